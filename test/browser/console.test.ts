import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../helpers/chromium";
import { startHarness, type Harness } from "../helpers/harness";
import { seed } from "../integration/inbox-fixtures";
import { deadline, waitFor } from "../helpers/deadlines";

/**
 * The console in a real browser: Debian's Chromium (test/helpers/chromium.ts) driven by
 * playwright-core. Screenshots of each page go to test-artifacts/console/ (git-ignored). Every
 * same-origin request the pages make outside /console is recorded and must be an operation of
 * /openapi.json: the console uses only the public API.
 */
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
  /** Every same-origin request outside /console the pages made, as "METHOD /path". */
  const requests: string[] = [];
  let operations: Array<{ method: string; template: string; path: RegExp }> | undefined;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    h = await startHarness({ worker: false });
    browser = await launchChromium();
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
    // Tenant b: a read-only key (inbox:read), a dead event and a subscription besides default.
    const bEvents = await seed(h, "browser-b", [
      { type: "their.event", payload: { secret: "tenant b" }, receivedAt: at(10) },
      { type: "their.failure", payload: { secret: "tenant b, dead" }, receivedAt: at(11) },
    ]);
    await h.sql("UPDATE deliveries SET status = 'dead', dead_at = now(), delivery_count = 5 WHERE event_id = $1", [bEvents[1]]);
    const bAdmin = await h.key("browser-b");
    expect((await h.request("POST", "/subscriptions", { key: bAdmin, body: { name: "b-orders", filter: { types: ["their.event"] } } })).status).toBe(201);
    b = { id: "browser-b", key: await h.key("browser-b", ["inbox:read"]), events: bEvents };
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
    const origin = new URL(h.url).origin;
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (u.origin === origin && u.pathname !== "/console" && !u.pathname.startsWith("/console/")) requests.push(`${r.method()} ${u.pathname}`);
    });
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
    expect(await outsideTheApi()).toEqual([]);
  }

  /** Each recorded request with the operation of /openapi.json it is ("METHOD /template"), or null. */
  async function operationsOfRequests(): Promise<Array<{ request: string; operation: string | null }>> {
    if (!operations) {
      const doc = (await h.request("GET", "/openapi.json")).body as { paths: Record<string, Record<string, unknown>> };
      const methods = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);
      operations = Object.entries(doc.paths).flatMap(([template, item]) => {
        const path = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}/]+\}/g, "[^/]+")}$`);
        return Object.keys(item)
          .filter((m) => methods.has(m))
          .map((m) => ({ method: m.toUpperCase(), template, path }));
      });
    }
    const ops = operations;
    return requests.map((request) => {
      const [method, path] = request.split(" ") as [string, string];
      const op = ops.find((o) => o.method === method && o.path.test(path));
      return { request, operation: op ? `${op.method} ${op.template}` : null };
    });
  }

  /** The recorded requests that are no operation (method and path template) of /openapi.json. */
  async function outsideTheApi(): Promise<string[]> {
    return (await operationsOfRequests()).filter((r) => r.operation === null).map((r) => r.request);
  }

  /** Presses Tab (or `key`) until `selector` has the focus, at most `max` times; the keyboard is the only input. */
  async function tabTo(page: Page, selector: string, key: "Tab" | "Shift+Tab" = "Tab", max = 60): Promise<void> {
    const target = page.locator(selector);
    for (let i = 0; i < max; i++) {
      await page.keyboard.press(key);
      if (await target.evaluate((el) => el === document.activeElement)) return;
    }
    throw new Error(`${selector} did not get the focus within ${max} presses of ${key} (focus is on ${await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120))})`);
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
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-event-id")))).toEqual([...b.events].reverse());
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
    const dead = await seed(h, c.id, [
      { type: "job.failed", payload: { job: "resize-image" }, receivedAt: at(21) },
      { type: "job.failed", payload: { job: "send-mail" }, receivedAt: at(22) },
      { type: "other", payload: { job: "send-mail" }, receivedAt: at(23) },
    ]);
    await h.sql("UPDATE deliveries SET status = 'dead', dead_at = now(), delivery_count = 5 WHERE event_id = ANY($1)", [dead]);
    const page = await open();
    await signIn(page, c.key);
    const rows = page.locator("[data-testid=event-table] tbody tr");
    await rows.first().waitFor();
    await page.getByLabel("Status").selectOption("dead");
    await page.getByLabel("Type").fill("job.failed");
    await page.getByRole("button", { name: "Apply" }).click();
    await becomes(() => rows.count(), 2, "dead job.failed rows");
    // With a payload search applied, the bulk redrive redrives what the page shows: the search is
    // part of its body (the other job.failed, and the other type with the same payload, stay dead).
    const bulk = page.getByRole("button", { name: "Redrive all matching dead events" });
    await page.getByLabel("Search payloads").fill("SEND-MAIL");
    await page.getByRole("button", { name: "Apply" }).click();
    await becomes(() => rows.count(), 1, "dead job.failed rows matching the search");
    await bulk.click();
    await page.getByRole("button", { name: "Yes, redrive them" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toBe("Redriven: 1");
    await becomes(() => rows.count(), 0, "dead job.failed rows matching the search after the redrive");
    const state = async (id: string) => (await h.request("GET", `/events/${id}`, { key: c.key })).body.status;
    expect([await state(dead[0]!), await state(dead[1]!), await state(dead[2]!)]).toEqual(["dead", "pending", "dead"]);
    await page.getByLabel("Search payloads").fill("");
    await page.getByRole("button", { name: "Apply" }).click();
    await becomes(() => rows.count(), 1, "dead job.failed rows without the search");
    await bulk.click();
    await page.getByRole("button", { name: "Yes, redrive them" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toBe("Redriven: 1");
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
  test("a bulk redrive with a payload search walks every window of the scan, past what one page examines", async () => {
    // 2 100 dead events: the needle in one of the newest 2 000 (one scan window) and one past them.
    const d = { id: "browser-d", key: await h.key("browser-d") };
    const made = await seed(h, d.id, Array.from({ length: 2100 }, (_, i) => ({ type: "job.failed", payload: i === 5 || i === 2095 ? { needle: true } : { i } })));
    await h.sql("UPDATE deliveries SET status = 'dead', dead_at = now(), delivery_count = 5 WHERE tenant_id = $1", [d.id]);
    const page = await open();
    await signIn(page, d.key);
    const rows = page.locator("[data-testid=event-table] tbody tr");
    await rows.first().waitFor();
    await page.getByLabel("Status").selectOption("dead");
    await page.getByLabel("Search payloads").fill("needle");
    await page.getByRole("button", { name: "Apply" }).click();
    // The first page examined one window: one match, and "Load older" for the rest.
    await becomes(() => rows.count(), 1, "the match in the first window");
    await page.getByRole("button", { name: "Redrive all matching dead events" }).click();
    await page.getByRole("button", { name: "Yes, redrive them" }).click();
    await becomes(() => page.getByRole("status").textContent(), "Redriven: 2", "the count over both windows");
    const state = async (id: string) => (await h.request("GET", `/events/${id}`, { key: d.key })).body.status;
    expect([await state(made[5]!), await state(made[2095]!), await state(made[6]!)]).toEqual(["pending", "pending", "dead"]);
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));

  test("signs in, filters and opens an event with the keyboard only", async () => {
    const page = await open();
    // The key field has the focus on arrival.
    await page.locator("#api-key").waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("api-key");
    await page.keyboard.type(a.key);
    await page.keyboard.press("Enter");
    const rows = page.locator("[data-testid=event-table] tbody tr");
    await rows.first().waitFor();
    await tabTo(page, "#f-type");
    await page.keyboard.type("order.created");
    await page.keyboard.press("Enter");
    await becomes(() => rows.count(), 2, "order.created rows");
    // Each row is one stop of Tab (its type links to the event; the id beside it is the same link, skipped).
    await tabTo(page, `[data-event-id="${a.events[0]}"] td.type a`);
    await page.keyboard.press("Enter");
    await page.getByTestId("payload").waitFor();
    expect(await page.locator("h2.event-id").textContent()).toBe(a.events[0]);
    expect(await page.getByTestId("payload").textContent()).toContain("Ada");
    // The payload (scrollable when long) takes the focus, so arrow keys and Page Down scroll it.
    await tabTo(page, "[data-testid=payload]");
    // And back to the list, still by keyboard (Shift+Tab to the link above).
    await tabTo(page, "a[href='#/events']:not(nav a)", "Shift+Tab");
    await page.keyboard.press("Enter");
    await rows.first().waitFor();
    await shot(page, "keyboard");
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));

  test("the subscription page with its chart, the subscriptions list and the send form fit a phone's width", async () => {
    // A long name and a long filter, the widest a subscription list gets.
    const name = `phone-${"x".repeat(58)}`;
    const types = Array.from({ length: 6 }, (_, i) => `a.very.long.event.type.name.number.${i}.${"y".repeat(40)}`);
    expect((await h.request("POST", "/subscriptions", { key: a.key, body: { name, filter: { types } } })).status).toBe(201);
    const page = await open(PHONE);
    await signIn(page, a.key);
    await page.locator("[data-testid=event-table] tbody tr").first().waitFor();
    const pages = [
      ["#/subscriptions/default", "[data-testid=stats] figure.chart svg", "subscription-phone"],
      [`#/subscriptions/${name}`, "[data-testid=stats] figure.chart svg", "subscription-filter-phone"],
      ["#/subscriptions", `ul.subs a[href="#/subscriptions/${name}"]`, "subscriptions-phone"],
      ["#/send", "form.send", "send-phone"],
    ] as const;
    for (const [hash, ready, shotName] of pages) {
      await page.goto(`${h.url}/console${hash}`);
      await page.locator(ready).waitFor();
      await assertUnharmed(page);
      await shot(page, shotName);
    }
    expect((await h.request("DELETE", `/subscriptions/${name}`, { key: a.key })).status).toBe(204);
    await page.context().close();
  }, deadline(60000));

  test("a read-only key is offered no change: no bulk redrive, redrive, replay, edit or delete", async () => {
    const page = await open();
    await signIn(page, b.key);
    const rows = page.locator("[data-testid=event-table] tbody tr");
    await rows.first().waitFor();
    await page.getByLabel("Status").selectOption("dead");
    await page.getByRole("button", { name: "Apply" }).click();
    await becomes(() => rows.count(), 1, "b's dead rows");
    expect(await page.getByRole("button", { name: /redrive/i }).count()).toBe(0);
    await rows.first().locator("td.type a").click();
    const dead = page.locator("[data-testid=deliveries] tr[data-subscription=default]");
    await expect(dead.locator(".status").textContent()).resolves.toBe("dead");
    expect(await page.getByRole("button", { name: /redrive/i }).count()).toBe(0);
    for (const name of ["default", "b-orders"]) {
      await page.goto(`${h.url}/console#/subscriptions/${name}`);
      await page.getByTestId("stats").waitFor();
      expect(await page.locator("[data-count=dead]").textContent()).toBe(name === "default" ? "1" : "0");
      // The only button left is Sign out.
      expect(await page.getByRole("button").evaluateAll((bs) => bs.map((x) => x.textContent))).toEqual(["Sign out"]);
      expect(await page.locator("form").count()).toBe(0);
      await shot(page, `read-only-${name}`);
    }
    await assertUnharmed(page);
    await page.context().close();
  }, deadline(60000));

  test("edits a subscription's filter; GET /subscriptions/{name} agrees", async () => {
    expect((await h.request("POST", "/subscriptions", { key: a.key, body: { name: "edited", filter: { types: ["order.paid"] } } })).status).toBe(201);
    const page = await open();
    await signIn(page, a.key);
    await page.getByRole("link", { name: "Subscriptions" }).click();
    await page.getByRole("link", { name: "edited" }).click();
    const types = page.locator("#s-types");
    await becomes(() => types.inputValue(), "order.paid", "the filter's types in the form");
    await types.fill("");
    await page.locator("#s-sources").fill("shop, billing");
    await page.locator("#s-tags").fill("eu");
    await page.getByRole("button", { name: "Save filter" }).click();
    await expect(page.getByRole("status").textContent()).resolves.toBe("Filter saved.");
    const api = await h.request("GET", "/subscriptions/edited", { key: a.key });
    expect(api.status).toBe(200);
    expect(api.body.filter).toEqual({ sources: ["shop", "billing"], tags: ["eu"] });
    // The page shows what the API holds after a reload.
    await page.reload();
    await becomes(() => page.locator("#s-sources").inputValue(), "shop, billing", "the saved sources");
    expect(await types.inputValue()).toBe("");
    await shot(page, "subscription-edited");
    await assertUnharmed(page);
    expect((await h.request("DELETE", "/subscriptions/edited", { key: a.key })).status).toBe(204);
    await page.context().close();
  }, deadline(60000));

  test("every request the pages made is an operation of /openapi.json", async () => {
    // The tests above walked every page: the check is not empty, and each operation the console
    // needs was seen (and found in the document).
    const seen = new Set((await operationsOfRequests()).map((r) => r.operation));
    expect([...seen]).toEqual(
      expect.arrayContaining([
        "GET /key",
        "GET /events",
        "GET /events/{id}",
        "POST /events",
        "POST /events/{id}/redrive",
        "GET /subscriptions",
        "POST /subscriptions",
        "GET /subscriptions/{name}",
        "PATCH /subscriptions/{name}",
        "DELETE /subscriptions/{name}",
        "GET /subscriptions/{name}/stats",
        "POST /subscriptions/{name}/replay",
        "POST /subscriptions/{name}/redrive",
      ]),
    );
    expect(await outsideTheApi()).toEqual([]);
  });
});
