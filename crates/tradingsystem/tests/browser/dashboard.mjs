// Drives the dashboard as a trader would, in headless Chromium: log in, watch prices move, send an order, find it in
// the blotter and in positions, activate the kill switch and see the next order rejected with its reason. Fails on
// any console error or uncaught page error. Usage: node dashboard.mjs BASE_URL ADMIN_PASSWORD SCREENSHOT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, password, shots] = process.argv.slice(2);
if (!base || !password || !shots) {
  console.error("usage: node dashboard.mjs BASE_URL ADMIN_PASSWORD SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const problems = [];
let page;
const step = async (name, fn) => {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message.split("\n")[0]}`);
    if (page) await page.screenshot({ path: `${shots}/failed.png`, fullPage: true }).catch(() => {});
    await browser.close();
    process.exit(1);
  }
};
const expect = (cond, message) => {
  if (!cond) throw new Error(message);
};

try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, locale: "pt-BR" });
  page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  await step("the login form is shown", async () => {
    await page.goto(base + "/");
    await page.locator("#login-form").waitFor({ state: "visible", timeout: 10000 });
  });

  await step("a wrong password is refused", async () => {
    await page.fill("#login-user", "admin");
    await page.fill("#login-pass", "wrong-password");
    await page.click("#login-submit");
    await page.waitForFunction(() => document.getElementById("login-error").textContent.includes("inválidos"));
  });

  await step("log in", async () => {
    await page.fill("#login-pass", password);
    await page.click("#login-submit");
    await page.locator("#app-view").waitFor({ state: "visible", timeout: 10000 });
    await page.waitForFunction(() => document.querySelectorAll("#watch tbody tr").length >= 5, null, { timeout: 10000 });
  });

  await step("prices move (WebSocket)", async () => {
    const snapshot = () =>
      page.$$eval("#watch tbody tr", (rows) => rows.map((r) => r.querySelector(".last").textContent).join("|"));
    const before = await snapshot();
    await page.waitForFunction(
      (b) => [...document.querySelectorAll("#watch tbody tr")].map((r) => r.querySelector(".last").textContent).join("|") !== b,
      before,
      { timeout: 15000 },
    );
    const text = await page.textContent('#watch tr[data-symbol="PETR4"] .last');
    expect(/^R\$\s?\d+,\d{2}$/.test(text.trim()), `PETR4 last price in pt-BR R$: ${text}`);
  });

  await step("the chart draws candles", async () => {
    await page.waitForFunction(() => document.querySelectorAll("#chart canvas").length > 0, null, { timeout: 10000 });
  });

  await step("the ticket refuses a quantity off the lot and a price off the tick, without sending", async () => {
    const rows = await page.locator("#orders tbody tr").count();
    await page.selectOption("#t-symbol", "PETR4");
    await page.selectOption("#t-type", "LIMIT");
    await page.fill("#t-qty", "150");
    await page.fill("#t-price", "30,00");
    await page.click("#t-send");
    await page.waitForFunction(() => document.getElementById("t-error").textContent.includes("lote"));
    await page.fill("#t-qty", "100");
    await page.fill("#t-price", "30,005");
    await page.click("#t-send");
    await page.waitForFunction(() => document.getElementById("t-error").textContent.includes("tick"));
    expect((await page.locator("#orders tbody tr").count()) === rows, "nothing was sent");
  });

  let orderId;
  await step("send a market order and see it filled in the blotter", async () => {
    await page.selectOption("#t-type", "MARKET");
    await page.selectOption("#t-side", "BUY");
    await page.fill("#t-qty", "100");
    await page.click("#t-send");
    await page.waitForFunction(() => /Ordem #\d+/.test(document.getElementById("t-result").textContent), null, { timeout: 10000 });
    orderId = (await page.textContent("#t-result")).match(/#(\d+)/)[1];
    await page.locator(`#orders tr[data-id="${orderId}"][data-status="FILLED"]`).waitFor({ timeout: 10000 });
  });

  await step("the position shows up with P&L in R$", async () => {
    const row = page.locator('#positions tr[data-symbol="PETR4"]');
    await row.waitFor({ timeout: 10000 });
    const qty = (await row.locator(".qty").textContent()).trim();
    expect(qty === "100", `PETR4 position 100, got ${qty}`);
    const total = await page.textContent("#pos-daily");
    expect(total.includes("R$"), `daily P&L in R$: ${total}`);
  });

  await step("a resting order can be canceled from the blotter", async () => {
    await page.selectOption("#t-type", "LIMIT");
    await page.selectOption("#t-side", "BUY");
    await page.fill("#t-qty", "100");
    const last = await page.$eval('#watch tr[data-symbol="PETR4"] .last', (e) => Number(e.dataset.value));
    const price = (Math.floor(last * 0.97 * 100) / 100).toFixed(2).replace(".", ",");
    await page.fill("#t-price", price);
    await page.click("#t-send");
    await page.waitForFunction((prev) => {
      const m = document.getElementById("t-result").textContent.match(/#(\d+)/);
      return m && m[1] !== prev;
    }, orderId, { timeout: 10000 });
    const id = (await page.textContent("#t-result")).match(/#(\d+)/)[1];
    const row = page.locator(`#orders tr[data-id="${id}"]`);
    await row.locator("button").click({ timeout: 10000 });
    await page.locator(`#orders tr[data-id="${id}"][data-status="CANCELED"]`).waitFor({ timeout: 10000 });
  });

  await step("activate the kill switch (with confirmation)", async () => {
    await page.click("#kill-activate");
    await page.locator("#kill-dialog").waitFor({ state: "visible" });
    await page.fill("#kill-reason", "browser test");
    await page.click("#kill-confirm");
    await page.locator("#kill-banner").waitFor({ state: "visible", timeout: 10000 });
  });

  await step("the next order is rejected with its reason", async () => {
    await page.selectOption("#t-type", "MARKET");
    await page.fill("#t-qty", "100");
    await page.click("#t-send");
    await page.waitForFunction(() => document.getElementById("t-error").textContent.includes("KILL_SWITCH"), null, { timeout: 10000 });
  });

  await step("the TP-Capital panel lists signals, the Idea Bank shows its kanban, documentation search highlights", async () => {
    await page.waitForFunction(() => /Nenhum sinal|Ativo/.test(document.querySelector("#panel-signals").textContent), null, { timeout: 10000 });
    await page.waitForFunction(() => document.querySelectorAll("#panel-ideas .kanban .col").length === 5, null, { timeout: 10000 });
    await page.fill("#docs-q", "gestao de risco");
    await page.waitForFunction(() => [...document.querySelectorAll("#docs-hits li")].some((li) => li.querySelector("mark")), null, { timeout: 10000 });
  });

  await step("the API reference renders from /openapi.json", async () => {
    await page.screenshot({ path: `${shots}/dashboard.png`, fullPage: true });
    await page.goto(base + "/api-docs");
    await page.waitForFunction(() => document.querySelectorAll(".op").length >= 30, null, { timeout: 10000 });
    await page.screenshot({ path: `${shots}/api-reference.png` });
  });

  await step("the console has no errors", async () => {
    // Chromium logs every 4xx answer to fetch as a console error. Exactly two are the API doing its job in the
    // steps above (the wrong password's 401, the kill switch's 403); anything else is a failure.
    const expected = [
      "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
      "Failed to load resource: the server responded with a status of 403 (Forbidden)",
    ];
    const left = [...problems];
    for (const e of expected) {
      const i = left.indexOf(`console: ${e}`);
      expect(i >= 0, `expected exactly one: ${e}`);
      left.splice(i, 1);
    }
    expect(left.length === 0, left.join("; "));
  });
} finally {
  await browser.close();
}
console.log("browser test passed");
