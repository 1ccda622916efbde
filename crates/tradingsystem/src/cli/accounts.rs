//! `tradingsystem user` and `tradingsystem apikey`: accounts and keys, straight in the database.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use gateway::auth::{check_password_policy, check_username, hash_password, new_api_key, random_hex, Role};
use std::io::BufRead;
use tradingsystem::{config, serve};

#[derive(Args)]
pub struct PasswordArgs {
    /// The password (visible in the process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Creates a user. Without a password option, a random one is generated and printed once.
    Add {
        username: String,
        #[arg(long, value_parser = ["admin", "trader", "viewer"], default_value = "trader")]
        role: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Lists users.
    List,
    /// Sets a user's password (the user's open sessions end).
    Passwd {
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Disables a user: logins are refused and open sessions end (within 2 s on a running server).
    Disable { username: String },
    /// Lets a disabled user log in again (sessions ended by the disable stay ended).
    Enable { username: String },
    /// Changes a user's role; open sessions get it from their next request.
    Role {
        username: String,
        #[arg(value_parser = ["admin", "trader", "viewer"])]
        role: String,
    },
}

#[derive(Subcommand)]
pub enum ApiKeyCmd {
    /// Creates a key and prints it once.
    Create {
        name: String,
        #[arg(long, value_parser = ["admin", "trader", "viewer"], default_value = "trader")]
        role: String,
    },
    /// Lists keys (prefixes only; keys are stored hashed).
    List,
    /// Revokes a key by id or name.
    Revoke { id_or_name: String },
}

fn read_password(args: &PasswordArgs) -> Result<Option<String>> {
    if let Some(p) = &args.password {
        return Ok(Some(p.clone()));
    }
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()));
    }
    Ok(None)
}

pub async fn user_cmd(cfg: &config::Config, cmd: UserCmd) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let db = serve::open_db(cfg).await?;
    match cmd {
        UserCmd::Add { username, role, password } => {
            check_username(&username).map_err(|m| anyhow::anyhow!("username: {m}"))?;
            let (pw, generated) = match read_password(&password)? {
                Some(p) => (p, false),
                None => (random_hex(12), true),
            };
            check_password_policy(&pw).map_err(|m| anyhow::anyhow!("password: {m}"))?;
            let role = Role::parse(&role).context("unknown role")?;
            let hash = hash_password(&pw).map_err(anyhow::Error::msg)?;
            db.create_user(&username, &hash, role).await?;
            println!("created user {username} with role {}", role.as_str());
            if generated {
                println!("password: {pw}");
            }
        }
        UserCmd::List => {
            for u in db.list_users().await? {
                println!(
                    "{}\t{}\t{}{}",
                    u.username,
                    u.role,
                    u.created_at.to_rfc3339(),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        UserCmd::Passwd { username, password } => {
            let pw = read_password(&password)?.context("give the new password with --password or --password-stdin")?;
            check_password_policy(&pw).map_err(|m| anyhow::anyhow!("password: {m}"))?;
            let hash = hash_password(&pw).map_err(anyhow::Error::msg)?;
            db.set_password(&username, &hash).await?;
            println!("password changed for {username}");
        }
        UserCmd::Disable { username } => {
            let u = db.user_by_name(&username).await?.with_context(|| format!("no user named {username:?}"))?;
            db.update_user(&u.id, Some(true), None).await?;
            println!("disabled user {username}");
        }
        UserCmd::Enable { username } => {
            let u = db.user_by_name(&username).await?.with_context(|| format!("no user named {username:?}"))?;
            db.update_user(&u.id, Some(false), None).await?;
            println!("enabled user {username}");
        }
        UserCmd::Role { username, role } => {
            let u = db.user_by_name(&username).await?.with_context(|| format!("no user named {username:?}"))?;
            let role = Role::parse(&role).context("unknown role")?;
            db.update_user(&u.id, None, Some(role)).await?;
            println!("user {username} now has role {role}");
        }
    }
    db.close().await;
    Ok(())
}

pub async fn apikey_cmd(cfg: &config::Config, cmd: ApiKeyCmd) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let db = serve::open_db(cfg).await?;
    match cmd {
        ApiKeyCmd::Create { name, role } => {
            let role = Role::parse(&role).context("unknown role")?;
            let (key, prefix, hash) = new_api_key();
            let k = db.create_api_key(&name, &hash, &prefix, role, "cli").await?;
            println!("created API key {} ({}) with role {}", k.name, k.id, k.role);
            println!("key (shown once): {key}");
        }
        ApiKeyCmd::List => {
            for k in db.list_api_keys().await? {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}…\t{}\t{}", k.id, k.name, k.prefix, k.role, state);
            }
        }
        ApiKeyCmd::Revoke { id_or_name } => {
            // Names are not unique: a name revokes its key only when exactly one active key carries it.
            let keys = db.list_api_keys().await?;
            let id = if keys.iter().any(|k| k.id == id_or_name) {
                id_or_name
            } else {
                let named: Vec<_> = keys.iter().filter(|k| k.name == id_or_name && k.revoked_at.is_none()).collect();
                match named.as_slice() {
                    [] => anyhow::bail!("no active API key with id or name {id_or_name:?}"),
                    [one] => one.id.clone(),
                    many => anyhow::bail!(
                        "{} active keys are named {id_or_name:?}; revoke one by id ({})",
                        many.len(),
                        many.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                }
            };
            let k = db.revoke_api_key(&id).await?;
            println!("revoked API key {} ({})", k.name, k.id);
        }
    }
    db.close().await;
    Ok(())
}
