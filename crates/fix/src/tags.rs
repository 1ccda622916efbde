//! The FIX 4.4 tags and values this engine and the order-entry adapter use (names as in the FIX 4.4 dictionary).

pub const ACCOUNT: u32 = 1;
pub const AVG_PX: u32 = 6;
pub const BEGIN_SEQ_NO: u32 = 7;
pub const CL_ORD_ID: u32 = 11;
pub const CUM_QTY: u32 = 14;
pub const END_SEQ_NO: u32 = 16;
pub const EXEC_ID: u32 = 17;
pub const LAST_PX: u32 = 31;
pub const LAST_QTY: u32 = 32;
pub const MSG_SEQ_NUM: u32 = 34;
pub const MSG_TYPE: u32 = 35;
pub const NEW_SEQ_NO: u32 = 36;
pub const ORDER_ID: u32 = 37;
pub const ORDER_QTY: u32 = 38;
pub const ORD_STATUS: u32 = 39;
pub const ORD_TYPE: u32 = 40;
pub const ORIG_CL_ORD_ID: u32 = 41;
pub const POSS_DUP_FLAG: u32 = 43;
pub const PRICE: u32 = 44;
pub const REF_SEQ_NUM: u32 = 45;
pub const SENDER_COMP_ID: u32 = 49;
pub const SENDING_TIME: u32 = 52;
pub const SIDE: u32 = 54;
pub const SYMBOL: u32 = 55;
pub const TARGET_COMP_ID: u32 = 56;
pub const TEXT: u32 = 58;
pub const TIME_IN_FORCE: u32 = 59;
pub const TRANSACT_TIME: u32 = 60;
pub const ENCRYPT_METHOD: u32 = 98;
pub const STOP_PX: u32 = 99;
pub const ORD_REJ_REASON: u32 = 103;
pub const HEART_BT_INT: u32 = 108;
pub const TEST_REQ_ID: u32 = 112;
pub const ORIG_SENDING_TIME: u32 = 122;
pub const GAP_FILL_FLAG: u32 = 123;
pub const RESET_SEQ_NUM_FLAG: u32 = 141;
pub const EXEC_TYPE: u32 = 150;
pub const LEAVES_QTY: u32 = 151;
pub const SECURITY_EXCHANGE: u32 = 207;
pub const REF_TAG_ID: u32 = 371;
pub const REF_MSG_TYPE: u32 = 372;
pub const SESSION_REJECT_REASON: u32 = 373;
pub const BUSINESS_REJECT_REASON: u32 = 380;
pub const CXL_REJ_RESPONSE_TO: u32 = 434;
pub const USERNAME: u32 = 553;
pub const PASSWORD: u32 = 554;
pub const NEXT_EXPECTED_MSG_SEQ_NUM: u32 = 789;
pub const ORD_STATUS_REQ_ID: u32 = 790;

pub mod msg_type {
    pub const HEARTBEAT: &[u8] = b"0";
    pub const TEST_REQUEST: &[u8] = b"1";
    pub const RESEND_REQUEST: &[u8] = b"2";
    pub const REJECT: &[u8] = b"3";
    pub const SEQUENCE_RESET: &[u8] = b"4";
    pub const LOGOUT: &[u8] = b"5";
    pub const EXECUTION_REPORT: &[u8] = b"8";
    pub const ORDER_CANCEL_REJECT: &[u8] = b"9";
    pub const LOGON: &[u8] = b"A";
    pub const NEW_ORDER_SINGLE: &[u8] = b"D";
    pub const ORDER_CANCEL_REQUEST: &[u8] = b"F";
    pub const ORDER_CANCEL_REPLACE_REQUEST: &[u8] = b"G";
    pub const ORDER_STATUS_REQUEST: &[u8] = b"H";
    pub const BUSINESS_MESSAGE_REJECT: &[u8] = b"j";

    /// Session-level messages, which a resend replaces with a gap fill.
    pub fn is_admin(t: &[u8]) -> bool {
        matches!(t, b"0" | b"1" | b"2" | b"3" | b"4" | b"5" | b"A")
    }
}

/// SessionRejectReason(373) values used here.
pub mod reject_reason {
    pub const REQUIRED_TAG_MISSING: u64 = 1;
    pub const VALUE_INCORRECT: u64 = 5;
    pub const COMP_ID_PROBLEM: u64 = 9;
    pub const SENDING_TIME_ACCURACY: u64 = 10;
    pub const INVALID_MSG_TYPE: u64 = 11;
    pub const OTHER: u64 = 99;
}
