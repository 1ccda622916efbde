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
  // The browser runs in UTC on purpose: every time the dashboard shows must still be B3's (São Paulo).
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, locale: "pt-BR", timezoneId: "UTC" });
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

  await step("the chart's candles start at the left with room, inside their panel", async () => {
    await page.waitForFunction(() => S.series && S.series.data().length > 0, null, { timeout: 10000 });
    const f = await page.evaluate(() => {
      const range = S.chart.timeScale().getVisibleLogicalRange();
      const card = document.querySelector(".chart-card").getBoundingClientRect();
      const canvases = [...document.querySelectorAll("#chart canvas")].map((c) => c.getBoundingClientRect());
      return { from: range.from, to: range.to, bars: S.series.data().length, cardRight: card.right, right: Math.max(...canvases.map((r) => r.right)) };
    });
    expect(f.from <= -2, `the first candle is in view with room for its label, not squeezed right: ${JSON.stringify(f)}`);
    expect(f.to - f.from >= Math.min(f.bars, 60) && f.to - f.from <= 130, `a readable number of bars in view: ${JSON.stringify(f)}`);
    expect(f.right <= f.cardRight, `the chart (labels included) stays inside its panel: ${JSON.stringify(f)}`);
  });

  await step("times are B3's (São Paulo) everywhere, though the browser is in UTC", async () => {
    const t = await page.evaluate(() => {
      const seconds = Date.UTC(2026, 11, 4, 13, 5, 0) / 1000; // 10:05 in São Paulo
      return { axis: chartTimeLabel(seconds, 3), crosshair: S.chart.options().localization.timeFormatter(seconds), day: chartTimeLabel(seconds, 2) };
    });
    expect(t.axis === "10:05", `axis label ${t.axis}`);
    expect(t.crosshair === "04/12 10:05", `crosshair label ${t.crosshair}`);
    expect(t.day === "04/12", `day label ${t.day}`);
  });

  await step("the quotes table fits its panel at 1440 px", async () => {
    const f = await page.$eval(".watch", (c) => ({ scroll: c.scrollWidth, client: c.clientWidth }));
    expect(f.scroll <= f.client, `quotes overflow their panel: ${f.scroll} > ${f.client}`);
  });

  await step("the header speaks Portuguese", async () => {
    const header = (await page.textContent(".topbar")).toLowerCase();
    for (const word of ["feed", "stream", "connected", "disconnected", "reconnecting", "kill switch"]) {
      expect(!header.includes(word), `English in the header: "${word}" in "${header}"`);
    }
    await page.waitForFunction(() => /Mercado \(simulado\): conectado/.test(document.getElementById("feed-state").textContent), null, { timeout: 10000 });
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

  await step("the blotter's time is São Paulo's", async () => {
    const row = page.locator(`#orders tr[data-id="${orderId}"]`);
    const shown = (await row.locator("td").nth(1).textContent()).trim();
    const expected = await page.evaluate(() => new Date().toLocaleTimeString("pt-BR", { timeZone: "America/Sao_Paulo", hour: "2-digit" }));
    expect(shown.slice(0, 2) === expected.slice(0, 2), `blotter hour ${shown}, São Paulo hour ${expected}`);
  });

  await step("the position shows up with P&L in R$", async () => {
    const row = page.locator('#positions tr[data-symbol="PETR4"]');
    await row.waitFor({ timeout: 10000 });
    const qty = (await row.locator(".qty").textContent()).trim();
    expect(qty === "100", `PETR4 position 100, got ${qty}`);
    // The same position under the account that traded it.
    const mine = await page.$eval("#pos-accounts tr[data-account]", (r) => r.textContent);
    expect(mine.includes("PETR4 100"), `per-account row: ${mine}`);
    const total = await page.textContent("#pos-daily");
    expect(total.includes("R$"), `daily P&L in R$: ${total}`);
  });

  await step("the risk panel's day P&L agrees with the positions panel as prices move", async () => {
    const both = () =>
      page.evaluate(() => {
        const dts = [...document.querySelectorAll("#risk-status dt")];
        const dt = dts.find((d) => d.textContent === "P&L do dia");
        return [dt ? dt.nextElementSibling.textContent : null, document.getElementById("pos-daily").textContent];
      });
    for (let i = 0; i < 3; i++) {
      // Each positions refresh (every 2 s, and on every fill) renders both panels from one snapshot.
      await page.waitForFunction(
        (prev) => document.getElementById("pos-daily").dataset.refreshes !== prev,
        await page.$eval("#pos-daily", (e) => e.dataset.refreshes || ""),
        { timeout: 10000 },
      );
      const [risk, positions] = await both();
      expect(risk === positions, `risk panel ${risk}, positions panel ${positions}`);
    }
  });

  await step("a resting order can be modified and canceled from the blotter", async () => {
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
    // Modified first: twice the quantity, one tick lower; the row shows the new terms once the broker confirms.
    await row.locator("button.edit").click({ timeout: 10000 });
    await row.locator("input.edit-qty").fill("200");
    const lower = (Math.floor(last * 0.97 * 100) / 100 - 0.01).toFixed(2);
    await row.locator("input.edit-price").fill(lower.replace(".", ","));
    await row.locator("button.edit-send").click();
    await page.locator(`#orders tr[data-id="${id}"][data-qty="200"][data-price="${Number(lower)}"]`).waitFor({ timeout: 10000 });
    await page.locator(`#orders tr[data-id="${id}"] button.cancel`).click({ timeout: 10000 });
    await page.locator(`#orders tr[data-id="${id}"][data-status="CANCELED"]`).waitFor({ timeout: 10000 });
  });

  await step("the risk panel lists the broker connections", async () => {
    await page.locator('#brokers tr[data-broker="paper"][data-up="true"]').waitFor({ timeout: 10000 });
    const text = await page.textContent('#brokers tr[data-broker="paper"]');
    expect(text.includes("paper") && text.includes("*") && text.includes("conectada"), `broker row: ${text}`);
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

  await step("the backtest panel names a bad parameter, then runs one and shows its figures and equity curve", async () => {
    await page.waitForFunction(() => document.querySelectorAll("#bt-strategy option").length >= 3, null, { timeout: 10000 });
    await page.selectOption("#bt-strategy", "sma_cross");
    await page.fill("#bt-symbols", "PETR4");
    await page.fill("#bt-from", "2025-03-10");
    await page.fill("#bt-to", "2025-03-10");
    await page.fill("#bt-params", "fsat=3");
    await page.click("#bt-run");
    await page.waitForFunction(() => document.getElementById("bt-error").textContent.includes("fsat"), null, { timeout: 10000 });
    await page.fill("#bt-params", "fast=1 slow=50 hold_ticks=100");
    await page.click("#bt-run");
    await page.waitForFunction(
      () => !document.getElementById("bt-result").hidden && document.querySelector("#bt-equity polyline"),
      null,
      { timeout: 60000 },
    );
    const figures = await page.textContent("#bt-figures");
    expect(figures.includes("Sharpe") && figures.includes("R$"), `figures: ${figures}`);
    await page.locator('#bt-jobs tr[data-status="done"]').waitFor({ timeout: 10000 });
    await page.locator("#panel-backtests").screenshot({ path: `${shots}/backtest-panel.png` });
  });

  await step("a configured strategy is listed, started and stopped from its panel", async () => {
    const row = '#strategies tr[data-name="vale-breakout"]';
    await page.locator(`${row}[data-state="stopped"]`).waitFor({ timeout: 10000 });
    await page.locator(`${row} button`).click();
    await page.locator(`${row}[data-state="running"]`).waitFor({ timeout: 10000 });
    await page.locator(`${row} button`).click();
    await page.locator(`${row}[data-state="stopped"]`).waitFor({ timeout: 10000 });
  });

  await step("the API reference renders from /openapi.json", async () => {
    await page.screenshot({ path: `${shots}/dashboard.png`, fullPage: true });
    await page.goto(base + "/api-docs");
    await page.waitForFunction(() => document.querySelectorAll(".op").length >= 30, null, { timeout: 10000 });
    await page.screenshot({ path: `${shots}/api-reference.png` });
  });

  await step("the console has no errors", async () => {
    // Chromium logs every 4xx answer to fetch as a console error. Exactly three are the API doing its job in the
    // steps above (the wrong password's 401, the kill switch's 403, the bad backtest parameter's 422); anything
    // else is a failure.
    const expected = [
      "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
      "Failed to load resource: the server responded with a status of 403 (Forbidden)",
      "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)",
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
