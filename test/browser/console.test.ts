import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { startHarness, type Harness } from "../helpers/harness";
import { seed } from "../integration/inbox-fixtures";
import { deadline, waitFor } from "../helpers/deadlines";

/**
 * The console in a real browser: Debian's Chromium (CHROMIUM_PATH, default /usr/bin/chromium;
 * .ci/run installs it) driven by playwright-core. Screenshots of each page go to
 * test-artifacts/console/ (git-ignored).
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(__dirname, "..", "..", "test-artifacts", "console");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** Attacks on the page: markup, attribute breakout, script URLs, a very long string and deep nesting. */
function hostilePayload(): unknown {
  let deep: unknown = { bottom: "<script>window.__pwned='deep'</script>" };
  for (let i = 0; i < 150; i++) deep = { level: i, child: deep };
  return {
    script: "<script>window.__pwned='script'</script>",
    img: `"><img src=x onerror="window.__pwned='img'">`,
    url: "javascript:window.__pwned='url'",
    "<img src=x onerror=window.__pwned='key'>": "a key that is markup",
    svg: "<svg onload=\"window.__pwned='svg'\"></svg>",
    long: "W".repeat(20000),
    deep,
  };
}

describe("console in Chromium", () => {
  let h: Harness;
  let browser: Browser;
  const pageErrors: string[] = [];
  const dialogs: string[] = [];
  const at = (s: number) => new Date(Date.parse("2026-05-01T10:00:00Z") + s * 1000);
  let a: { id: string; key: string; events: string[] };
  let b: { id: string; key: string; events: string[] };

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`);
    h = await startHarness({ worker: false });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
    const aId = "browser-a";
    const events = await seed(h, aId, [
      { type: "order.created", source: "shop", tags: ["eu"], payload: { customer: "Ada", total: 42.5, items: [{ sku: "A-1", qty: 2 }] }, receivedAt: at(1) },
      { type: "order.paid", source: "billing", payload: { customer: "Grace", paid: true }, receivedAt: at(2) },
      { type: "order.created", source: "shop", tags: ["us"], payload: { customer: "Linus" }, receivedAt: at(3) },
      { type: "<img src=x onerror=window.__pwned='type'>", source: "\"><script>window.__pwned='source'</script>", payload: hostilePayload(), receivedAt: at(4) },
      { type: "order.refunded", source: "billing", payload: { customer: "Barbara", reason: "damaged" }, receivedAt: at(5) },
    ]);
    // events[1] is dead; events[2] was acknowledged (a replay brings it back).
    await h.sql("UPDATE deliveries SET status = 'dead', dead_at = now(), delivery_count = 5 WHERE event_id = $1", [events[1]]);
    await h.sql("UPDATE deliveries SET status = 'acknowledged', acknowledged_at = now(), delivery_count = 1 WHERE event_id = $1", [events[2]]);
    a = { id: aId, key: await h.key(aId), events };
    b = { id: "browser-b", key: await h.key("browser-b", ["inbox:read"]), events: await seed(h, "browser-b", [{ type: "their.event", payload: { secret: "tenant b" }, receivedAt: at(10) }]) };
  }, deadline(60000));

  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  async function open(viewport = DESKTOP): Promise<Page> {
    const context = await browser.newContext({ viewport, timezoneId: "UTC" });
    const page = await context.newPage();
    // The page's own flags: any script a payload smuggled in would set window.__pwned or open a dialog.
    await page.addInitScript(() => {
      (window as unknown as { __pwned: unknown }).__pwned = false;
      (window as unknown as { __violations: string[] }).__violations = [];
      document.addEventListener("securitypolicyviolation", (e) => (window as unknown as { __violations: string[] }).__violations.push(e.violatedDirective));
    });
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("dialog", async (d) => {
      dialogs.push(d.message());
      await d.dismiss();
    });
    await page.goto(`${h.url}/console`);
    return page;
  }

  async function signIn(page: Page, key: string): Promise<void> {
    await page.getByLabel("API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
  }

  /** Waits until `read` answers `expected` (the page updates after its API call returns). */
  async function becomes<T>(read: () => Promise<T>, expected: T, what: string): Promise<void> {
    let last: T | undefined;
    await waitFor(async () => (last = await read()) === expected, { timeoutMs: 10000, what: `${what} (last: ${String(last)})` });
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  async function assertUnharmed(page: Page): Promise<void> {
    expect(await page.evaluate(() => (window as unknown as { __pwned: unknown }).__pwned)).toBe(false);
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
    // No horizontal scroll: long strings wrap or clip instead of widening the page.
    const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
    expect(scroll).toBeLessThanOrEqual(width);
  }

  test("a wrong key is refused; the right one lists the tenant's events, kept in sessionStorage only", async () => {
    const page = await open();
    await shot(page, "sign-in");
    await signIn(page, "trg_live_not_a_key");
    await expect(page.getByRole("alert").textContent()).resolves.toContain("not accepted");
    await signIn(page, a.key);
    await page.locator("[data-testid=event-table] tbody tr").first().waitFor();
    expect(await page.locator("[data-testid=event-table] tbody tr").count()).toBe(5);
    expect(page.url()).not.toContain(a.key);
    expect(await page.evaluate(() => document.cookie)).toBe("");
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([a.key]);
    await shot(page, "events");
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));

  test("filters by type and by payload text", async () => {
    const page = await open();
    await signIn(page, a.key);
    const rows = page.locator("[data-testid=event-table] tbody tr");
    await rows.first().waitFor();
    await page.getByLabel("Type").fill("order.created");
    await page.getByRole("button", { name: "Apply" }).click();
    await becomes(() => rows.count(), 2, "rows.count()");
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-event-id")))).toEqual([a.events[2], a.events[0]]);
    await page.getByLabel("Type").fill("");
    await page.getByLabel("Search payloads").fill("barbara");
    await page.getByRole("button", { name: "Apply" }).click();
    await becomes(() => rows.count(), 1, "rows.count()");
    expect(await rows.first().getAttribute("data-event-id")).toBe(a.events[4]);
    await shot(page, "events-filtered");
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));

  test("hostile payloads render as text: nothing runs, the layout holds, at desktop and phone width", async () => {
    for (const [name, viewport] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
      const page = await open(viewport);
      await signIn(page, a.key);
      await page.locator("[data-testid=event-table] tbody tr").first().waitFor();
      await assertUnharmed(page);
      await shot(page, `events-${name}`);
      await page.locator(`[data-event-id="${a.events[3]}"] td.type a`).click();
      const payload = page.getByTestId("payload");
      await payload.waitFor();
      const text = await payload.textContent();
      expect(text).toContain("<script>window.__pwned='script'</script>");
      expect(text).toContain(`"><img src=x onerror=\\"window.__pwned='img'\\">`);
      expect(text).toContain("javascript:window.__pwned='url'");
      expect(text).toContain("W".repeat(20000));
      expect(text).toContain("(depth 151)");
      // Markup in the data stayed text: no element came from it.
      expect(await page.locator("img, svg:not(figure svg), a[href^='javascript']").count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __violations: string[] }).__violations)).toEqual([]);
      await assertUnharmed(page);
      await shot(page, `event-hostile-${name}`);
      await page.context().close();
    }
  }, deadline(90000));

  test("opens an event and redrives its dead delivery; the API shows it pending", async () => {
    const page = await open();
    await signIn(page, a.key);
    await page.locator(`[data-event-id="${a.events[1]}"] td.type a`).click();
    const row = page.locator("[data-testid=deliveries] tr[data-subscription=default]");
    await expect(row.locator(".status").textContent()).resolves.toBe("dead");
    await shot(page, "event");
    await row.getByRole("button", { name: "Redrive" }).click();
    await becomes(() => row.locator(".status").textContent(), "pending", "row.locator('.status').textContent()");
    const api = await h.request("GET", `/events/${a.events[1]}`, { key: a.key });
    expect(api.body).toMatchObject({ status: "pending", delivery_count: 0, dead_at: null });
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));

  test("replays a time range from the subscription page, with the count; the API agrees", async () => {
    const page = await open();
    await signIn(page, a.key);
    await page.getByRole("link", { name: "Subscriptions" }).click();
    await page.getByRole("link", { name: "default" }).click();
    await page.getByTestId("stats").waitFor();
    await shot(page, "subscription");
    await page.getByLabel("From").fill("2026-05-01T10:00:03");
    await page.getByLabel("Before").fill("2026-05-01T10:00:04");
    await page.getByRole("button", { name: "Replay" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toContain("Replayed: 1");
    const api = await h.request("GET", `/events/${a.events[2]}`, { key: a.key });
    expect(api.body).toMatchObject({ status: "pending", delivery_count: 0, acknowledged_at: null });
    const stats = await h.request("GET", "/subscriptions/default/stats", { key: a.key });
    await becomes(() => page.locator("[data-count=pending]").textContent(), String(stats.body.counts.pending.count), "page.locator('[data-count=pending]').textContent()");
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));

  test("another tenant's key sees only its own events, and is offered only what its scopes allow", async () => {
    const page = await open();
    await signIn(page, b.key);
    const rows = page.locator("[data-testid=event-table] tbody tr");
    await rows.first().waitFor();
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-event-id")))).toEqual(b.events);
    // inbox:read only: no sending, no bulk redrive.
    expect(await page.getByRole("link", { name: "Send a test event" }).count()).toBe(0);
    await page.goto(`${h.url}/console#/events/${a.events[0]}`);
    await expect(page.getByRole("alert").textContent()).resolves.toContain("not found");
    await shot(page, "other-tenant");
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));
  test("sends a test event, with the envelope's validation errors next to their fields", async () => {
    const page = await open();
    await signIn(page, a.key);
    await page.getByRole("link", { name: "Send a test event" }).click();
    await page.getByLabel("Type", { exact: true }).fill("not a valid type!");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#type-error").waitFor();
    expect(await page.locator("#type-error").textContent()).toMatch(/type/);
    await shot(page, "send-invalid");
    await page.getByLabel("Type", { exact: true }).fill("console.test");
    await page.getByRole("button", { name: "Send" }).click();
    const accepted = page.getByRole("status");
    await accepted.waitFor();
    const id = (await accepted.locator("a").textContent()) ?? "";
    expect(id).toMatch(/^evt_/);
    // Stored once the worker drains it (this harness has none): the API has accepted it meanwhile.
    expect((await h.request("GET", `/events/${id}`, { key: a.key })).status).toBe(200);
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));

  test("creates a subscription with a filter and deletes it, as the API sees", async () => {
    const page = await open();
    await signIn(page, a.key);
    await page.getByRole("link", { name: "Subscriptions" }).click();
    await page.getByLabel("Name").fill("billing");
    await page.getByLabel("Types (comma-separated, empty for all)").fill("order.paid, order.refunded");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("link", { name: "billing" }).waitFor();
    expect((await h.request("GET", "/subscriptions/billing", { key: a.key })).body.filter).toMatchObject({ types: ["order.paid", "order.refunded"] });
    await page.getByRole("link", { name: "billing" }).click();
    await page.getByRole("button", { name: "Delete subscription" }).click();
    await page.getByRole("button", { name: "Really delete?" }).click();
    await page.getByRole("heading", { name: "Subscriptions" }).waitFor();
    expect((await h.request("GET", "/subscriptions/billing", { key: a.key })).status).toBe(404);
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));
  test("redrives every matching dead event after a confirmation, with the count; the live tail shows a new event", async () => {
    const c = { id: "browser-c", key: await h.key("browser-c") };
    const dead = await seed(h, c.id, [1, 2, 3].map((i) => ({ type: i === 3 ? "other" : "job.failed", receivedAt: at(20 + i) })));
    await h.sql("UPDATE deliveries SET status = 'dead', dead_at = now(), delivery_count = 5 WHERE event_id = ANY($1)", [dead]);
    const page = await open();
    await signIn(page, c.key);
    const rows = page.locator("[data-testid=event-table] tbody tr");
    await rows.first().waitFor();
    await page.getByLabel("Status").selectOption("dead");
    await page.getByLabel("Type").fill("job.failed");
    await page.getByRole("button", { name: "Apply" }).click();
    await becomes(() => rows.count(), 2, "dead job.failed rows");
    await page.getByRole("button", { name: "Redrive all matching dead events" }).click();
    await page.getByRole("button", { name: "Yes, redrive them" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toBe("Redriven: 2");
    await becomes(() => rows.count(), 0, "dead job.failed rows after the redrive");
    const stats = await h.request("GET", "/subscriptions/default/stats", { key: c.key });
    expect(stats.body.counts).toMatchObject({ pending: { count: 2, exact: true }, dead: { count: 1, exact: true } });

    // The live tail: one long poll at a time; a new event appears on top without a reload.
    await page.getByLabel("Status").selectOption("");
    await page.getByLabel("Type").fill("");
    await page.getByRole("button", { name: "Apply" }).click();
    await becomes(() => rows.count(), 3, "all rows");
    await page.locator("#f-live").check();
    await new Promise((r) => setTimeout(r, 500));
    const [fresh] = await seed(h, c.id, [{ type: "job.new", receivedAt: new Date() }]);
    await becomes(() => rows.first().getAttribute("data-event-id"), fresh!, "the new event on top");
    await shot(page, "live-tail");
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));
});
