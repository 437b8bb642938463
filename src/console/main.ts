import { h, render, type ComponentChild } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, forgetKey, storedKey, storeKey, type DeliveryView, type EventPage, type EventView, type Stats, type SubscriptionView } from "./api";
import { JsonView } from "./json";

/*
 * The Triggers console: a single page on the public API. Routes live in the URL's hash
 * (#/events, #/events/{id}, #/subscriptions, #/subscriptions/{name}, #/send); the API key never does.
 */

type Scopes = ReadonlySet<string>;
const can = (scopes: Scopes, scope: string) => scopes.has(scope) || scopes.has("admin");

function useHash(): string {
  const [hash, setHash] = useState(location.hash || "#/events");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/events");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

const fmtTime = (iso: string | null) => (iso ? iso.replace("T", " ").replace("Z", " UTC") : "—");

/** A datetime-local value (the browser's local time) as the RFC 3339 instant the API takes. */
function toInstant(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function ErrorBox(props: { error: unknown }) {
  if (!props.error) return null;
  const e = props.error;
  const text = e instanceof ApiError ? `${e.message} (${e.code})` : e instanceof Error ? e.message : String(e);
  return h("p", { class: "error", role: "alert" }, text);
}

function Field(props: { label: string; id: string; error?: string | undefined; children?: ComponentChild }) {
  return h("div", { class: "field" }, [
    h("label", { for: props.id }, props.label),
    props.children,
    props.error ? h("span", { class: "field-error", id: `${props.id}-error`, role: "alert" }, props.error) : null,
  ]);
}

function input(id: string, value: string, set: (v: string) => void, extra: Record<string, unknown> = {}) {
  return h("input", { id, name: id, value, onInput: (e: Event) => set((e.target as HTMLInputElement).value), ...extra });
}

/* ---------- sign in ---------- */

function SignIn(props: { onSignedIn: (scopes: string[]) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const me = await api<{ scopes: string[] }>("GET", "/key", { key: key.trim() });
      storeKey(key.trim());
      props.onSignedIn(me.scopes);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? new Error("That API key was not accepted.") : err);
    }
  };
  return h("main", { class: "signin" }, [
    h("h1", null, "Triggers console"),
    h("form", { onSubmit: submit, "aria-label": "Sign in" }, [
      h(Field, { label: "API key", id: "api-key" }, input("api-key", key, setKey, { type: "password", autocomplete: "off", required: true, autoFocus: true })),
      h("p", { class: "hint" }, "Kept in this tab only, until you sign out or close it."),
      h("button", { type: "submit" }, "Sign in"),
      h(ErrorBox, { error }),
    ]),
  ]);
}

/* ---------- events ---------- */

interface Filters {
  subscription: string;
  status: string;
  type: string;
  source: string;
  tag: string;
  since: string;
  until: string;
  q: string;
}
const EMPTY: Filters = { subscription: "default", status: "", type: "", source: "", tag: "", since: "", until: "", q: "" };

function filterQuery(f: Filters) {
  return {
    subscription: f.subscription || "default",
    status: f.status || undefined,
    type: f.type || undefined,
    source: f.source || undefined,
    tag: f.tag ? f.tag.split(",").map((t) => t.trim()).filter(Boolean) : undefined,
    since: toInstant(f.since),
    until: toInstant(f.until),
    q: f.q || undefined,
  };
}

function useSubscriptions(scopes: Scopes): string[] {
  const [names, setNames] = useState<string[]>(["default"]);
  useEffect(() => {
    if (!can(scopes, "subscriptions:manage")) return;
    api<{ data: SubscriptionView[] }>("GET", "/subscriptions").then((r) => setNames(r.data.map((s) => s.name)), () => undefined);
  }, [scopes]);
  return names;
}

function EventTable(props: { events: EventView[]; subscription: string }) {
  return h("table", { class: "events", "data-testid": "event-table" }, [
    h("thead", null, h("tr", null, ["Received", "Event", "Type", "Source", "Status"].map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      null,
      props.events.map((e) =>
        h("tr", { key: e.id, "data-event-id": e.id }, [
          h("td", { class: "time" }, fmtTime(e.received_at)),
          h("td", { class: "id" }, h("a", { href: `#/events/${encodeURIComponent(e.id)}?subscription=${encodeURIComponent(props.subscription)}`, tabIndex: -1 }, e.id)),
          h("td", { class: "clip type", title: e.type }, h("a", { href: `#/events/${encodeURIComponent(e.id)}?subscription=${encodeURIComponent(props.subscription)}` }, e.type)),
          h("td", { class: "clip", title: e.source ?? "" }, e.source ?? "—"),
          h("td", null, h("span", { class: `status status-${e.status}` }, e.status)),
        ]),
      ),
    ),
  ]);
}

/** Most calls one "Redrive all matching" with a payload search makes (each examines 2 000 dead events at most). */
const MAX_REDRIVE_CALLS = 50;

function EventsPage(props: { scopes: Scopes }) {
  const subscriptions = useSubscriptions(props.scopes);
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [events, setEvents] = useState<EventView[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [tail, setTail] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [result, setResult] = useState<string | null>(null);

  const load = useCallback(async (f: Filters, cursor?: string) => {
    setLoading(true);
    setError(null);
    try {
      const page = await api<EventPage>("GET", "/events", { query: { ...filterQuery(f), cursor } });
      setEvents((prev) => (cursor ? [...prev, ...page.data] : page.data));
      setNext(page.next_cursor);
      if (!cursor) setTail(page.tail_cursor);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }, []);
  useEffect(() => void load(applied), [applied, load]);

  // The live tail: one long poll at a time (the server waits up to 20 s), newest events on top.
  const tailRef = useRef(tail);
  tailRef.current = tail;
  useEffect(() => {
    if (!live) return;
    const stop = new AbortController();
    (async () => {
      while (!stop.signal.aborted && tailRef.current) {
        try {
          const page = await api<EventPage>("GET", "/events", { query: { ...filterQuery(applied), after: tailRef.current, wait_seconds: 20, limit: 100 }, signal: stop.signal });
          if (page.data.length > 0) setEvents((prev) => [...[...page.data].reverse(), ...prev].slice(0, 1000));
          tailRef.current = page.tail_cursor;
          setTail(page.tail_cursor);
        } catch (err) {
          if (stop.signal.aborted) return;
          setError(err);
          await new Promise((r) => setTimeout(r, 5000));
        }
      }
    })();
    return () => stop.abort();
  }, [live, applied]);

  const set = (k: keyof Filters) => (v: string) => setDraft({ ...draft, [k]: v });
  const redriveAll = async () => {
    setConfirming(false);
    try {
      const f = filterQuery(applied);
      const path = `/subscriptions/${encodeURIComponent(f.subscription)}/redrive`;
      const body = { type: f.type, source: f.source, tags: f.tag, since: f.since, until: f.until, q: f.q };
      // With a payload search one call examines one bounded window of dead events (as a page of the
      // list does) and hands on a cursor: walk the windows, up to MAX_REDRIVE_CALLS of them.
      let total = 0;
      let cursor: string | undefined;
      for (let calls = 1; ; calls++) {
        const r = await api<{ redriven: number; has_more: boolean; next_cursor: string | null }>("POST", path, { body: { ...body, cursor } });
        total += r.redriven;
        if (!r.has_more) {
          setResult(`Redriven: ${total}`);
          break;
        }
        if (r.next_cursor === null || calls >= MAX_REDRIVE_CALLS) {
          setResult(`Redriven: ${total} (more remain: run again)`);
          break;
        }
        cursor = r.next_cursor;
        setResult(`Redriving… ${total} so far`);
      }
      void load(applied);
    } catch (err) {
      setError(err);
    }
  };

  return h("section", { "aria-labelledby": "events-h" }, [
    h("h2", { id: "events-h" }, "Events"),
    h(
      "form",
      {
        class: "filters",
        "aria-label": "Event filters",
        onSubmit: (e: Event) => {
          e.preventDefault();
          setResult(null);
          // A confirmation belongs to the filters it was asked for.
          setConfirming(false);
          setApplied({ ...draft });
        },
      },
      [
        h(Field, { label: "Subscription", id: "f-subscription" }, h("select", { id: "f-subscription", value: draft.subscription, onChange: (e: Event) => set("subscription")((e.target as HTMLSelectElement).value) }, subscriptions.map((n) => h("option", { value: n }, n)))),
        h(Field, { label: "Status", id: "f-status" }, h("select", { id: "f-status", value: draft.status, onChange: (e: Event) => set("status")((e.target as HTMLSelectElement).value) }, ["", "pending", "delivered", "acknowledged", "dead"].map((s) => h("option", { value: s }, s || "any")))),
        h(Field, { label: "Type", id: "f-type" }, input("f-type", draft.type, set("type"))),
        h(Field, { label: "Source", id: "f-source" }, input("f-source", draft.source, set("source"))),
        h(Field, { label: "Tags (comma-separated)", id: "f-tag" }, input("f-tag", draft.tag, set("tag"))),
        h(Field, { label: "Received from", id: "f-since" }, input("f-since", draft.since, set("since"), { type: "datetime-local", step: 1 })),
        h(Field, { label: "Received before", id: "f-until" }, input("f-until", draft.until, set("until"), { type: "datetime-local", step: 1 })),
        h(Field, { label: "Search payloads", id: "f-q" }, input("f-q", draft.q, set("q"), { type: "search", placeholder: "text in the payload" })),
        h("div", { class: "actions" }, [
          h("button", { type: "submit" }, "Apply"),
          h("label", { class: "check" }, [h("input", { type: "checkbox", id: "f-live", checked: live, onChange: (e: Event) => setLive((e.target as HTMLInputElement).checked) }), " Live tail"]),
        ]),
      ],
    ),
    applied.status === "dead" && can(props.scopes, "events:ack")
      ? h("div", { class: "bulk" }, [
          confirming
            ? h("div", { role: "group", "aria-label": "Confirm redrive" }, [
                h("span", null, `Make every dead event of ${applied.subscription} that matches these filters deliverable again?`),
                h("button", { type: "button", onClick: redriveAll, id: "confirm-redrive-all" }, "Yes, redrive them"),
                h("button", { type: "button", class: "secondary", onClick: () => setConfirming(false) }, "Cancel"),
              ])
            : h("button", { type: "button", id: "redrive-all", onClick: () => setConfirming(true) }, "Redrive all matching dead events"),
        ])
      : null,
    result ? h("p", { class: "result", role: "status" }, result) : null,
    h(ErrorBox, { error }),
    applied.q || applied.type || applied.source || applied.tag
      ? h("p", { class: "hint" }, "Type, source, tag and payload search examine at most 2 000 events per status per page: a short page with “Load older” means keep going.")
      : null,
    h(EventTable, { events, subscription: applied.subscription }),
    events.length === 0 && !loading ? h("p", { class: "empty" }, "No events on this page.") : null,
    next ? h("button", { type: "button", class: "secondary", onClick: () => load(applied, next), disabled: loading }, "Load older") : null,
  ]);
}

/* ---------- one event ---------- */

function EventPageView(props: { id: string; subscription: string; scopes: Scopes }) {
  const [event, setEvent] = useState<(EventView & { deliveries: DeliveryView[] }) | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setEvent(await api("GET", `/events/${encodeURIComponent(props.id)}`, { query: { subscription: props.subscription } }));
    } catch (err) {
      setError(err);
    }
  }, [props.id, props.subscription]);
  useEffect(() => void load(), [load]);
  if (error) return h(ErrorBox, { error });
  if (!event) return h("p", null, "Loading…");
  const redrive = async (subscription: string) => {
    try {
      await api("POST", `/events/${encodeURIComponent(event.id)}/redrive`, { query: { subscription } });
      setNote(`Redriven in ${subscription}.`);
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(JSON.stringify(event.payload, null, 2));
      setNote("Payload copied.");
    } catch {
      setNote("The browser refused the clipboard: select the payload and copy it.");
    }
  };
  const row = (k: string, v: ComponentChild) => h("tr", null, [h("th", { scope: "row" }, k), h("td", null, v)]);
  return h("section", { "aria-labelledby": "event-h" }, [
    h("p", null, h("a", { href: "#/events" }, "← Events")),
    h("h2", { id: "event-h", class: "event-id" }, event.id),
    h("h3", null, "Envelope"),
    h("table", { class: "envelope" }, [
      h("tbody", null, [
        row("Type", event.type),
        row("Source", event.source ?? "—"),
        row("Tags", event.tags.length ? event.tags.join(", ") : "—"),
        row("Occurred", fmtTime(event.occurred_at)),
        row("Received", fmtTime(event.received_at)),
        row("Stored", fmtTime(event.stored_at)),
      ]),
    ]),
    h("h3", null, ["Payload ", h("button", { type: "button", class: "secondary small", onClick: copy }, "Copy")]),
    h(JsonView, { value: event.payload, label: "Payload" }),
    h("h3", null, "Deliveries"),
    note ? h("p", { class: "result", role: "status" }, note) : null,
    h("div", { class: "scroll" }, h("table", { class: "deliveries", "data-testid": "deliveries" }, [
      h("thead", null, h("tr", null, ["Subscription", "Status", "Deliveries", "Lease until", "Acknowledged", "Dead since", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        null,
        event.deliveries.map((d) =>
          h("tr", { "data-subscription": d.subscription }, [
            h("td", null, d.subscription),
            h("td", null, h("span", { class: `status status-${d.status}` }, d.status)),
            h("td", null, String(d.delivery_count)),
            h("td", null, fmtTime(d.lease_expires_at)),
            h("td", null, fmtTime(d.acknowledged_at)),
            h("td", null, d.dead_at ? `${fmtTime(d.dead_at)} (after ${d.delivery_count} deliveries)` : "—"),
            h("td", null, d.status === "dead" && can(props.scopes, "events:ack") ? h("button", { type: "button", class: "small", onClick: () => redrive(d.subscription) }, "Redrive") : null),
          ]),
        ),
      ),
    ])),
  ]);
}

/* ---------- subscriptions ---------- */

function Chart(props: { stats: Stats }) {
  const b = props.stats.buckets;
  const max = Math.max(1, ...b.map((x) => x.received));
  const W = 600;
  const H = 160;
  const bw = W / Math.max(1, b.length);
  const y = (v: number) => H - (v / max) * (H - 10);
  const line = b.map((x, i) => `${i === 0 ? "M" : "L"}${(i + 0.5) * bw},${y(x.backlog)}`).join(" ");
  return h("figure", { class: "chart" }, [
    h("svg", { viewBox: `0 0 ${W} ${H + 20}`, role: "img", "aria-label": `Events received per ${props.stats.bucket_seconds / 60} minutes over the last hour (bars) and how many of them are still pending or leased (line); most in one bucket: ${max}` }, [
      ...b.map((x, i) => h("rect", { x: i * bw + 2, y: y(x.received), width: bw - 4, height: H - y(x.received), class: x.complete ? "bar" : "bar partial" }, h("title", null, `${fmtTime(x.start)}: ${x.received} received, ${x.backlog} still pending${x.complete ? "" : " (at least)"}`))),
      h("path", { d: line, class: "backlog" }),
      h("text", { x: 0, y: H + 16, class: "axis" }, "−60 min"),
      h("text", { x: W, y: H + 16, class: "axis", "text-anchor": "end" }, "now"),
      h("text", { x: 0, y: 12, class: "axis" }, String(max)),
    ]),
    h("figcaption", null, "Bars: received per 5 minutes. Line: of those, still pending or leased. Pale bars are lower bounds."),
  ]);
}

const countText = (c: { count: number; exact: boolean }) => (c.exact ? String(c.count) : `≥ ${c.count} (bounded count)`);

function age(seconds: number | null): string {
  if (seconds === null) return "nothing pending";
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

function SubscriptionPage(props: { name: string; scopes: Scopes }) {
  const [sub, setSub] = useState<SubscriptionView | null>(null);
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const [note, setNote] = useState<string | null>(null);
  const [filter, setFilter] = useState({ types: "", sources: "", tags: "" });
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const path = `/subscriptions/${encodeURIComponent(props.name)}`;
  const load = useCallback(async () => {
    try {
      setStats(await api<Stats>("GET", `${path}/stats`));
      if (can(props.scopes, "subscriptions:manage")) {
        const s = await api<SubscriptionView>("GET", path);
        setSub(s);
        setFilter({ types: (s.filter?.types ?? []).join(", "), sources: (s.filter?.sources ?? []).join(", "), tags: (s.filter?.tags ?? []).join(", ") });
      }
    } catch (err) {
      setError(err);
    }
  }, [path, props.scopes]);
  useEffect(() => void load(), [load]);
  const replay = async (e: Event) => {
    e.preventDefault();
    setNote(null);
    setFieldErrors({});
    try {
      const r = await api<{ replayed: number; has_more: boolean }>("POST", `${path}/replay`, { body: { since: toInstant(since), until: toInstant(until) } });
      setNote(`Replayed: ${r.replayed}${r.has_more ? " (more remain: run again)" : ""}`);
      await load();
    } catch (err) {
      if (err instanceof ApiError && err.details.length) setFieldErrors(Object.fromEntries(err.details.map((d) => [`replay-${d.path}`, d.message])));
      else setError(err);
    }
  };
  const list = (s: string) => (s.trim() ? s.split(",").map((x) => x.trim()).filter(Boolean) : undefined);
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await api("PATCH", path, { body: { filter: { types: list(filter.types), sources: list(filter.sources), tags: list(filter.tags) } } });
      setNote("Filter saved.");
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    if (!confirmDelete) return setConfirmDelete(true);
    try {
      await api("DELETE", path);
      location.hash = "#/subscriptions";
    } catch (err) {
      setError(err);
    }
  };
  const [confirmDelete, setConfirmDelete] = useState(false);
  return h("section", { "aria-labelledby": "sub-h" }, [
    h("p", null, h("a", { href: "#/subscriptions" }, "← Subscriptions")),
    h("h2", { id: "sub-h" }, props.name),
    h(ErrorBox, { error }),
    note ? h("p", { class: "result", role: "status" }, note) : null,
    stats
      ? h("div", { class: "stats", "data-testid": "stats" }, [
          h("dl", null, [
            h("dt", null, "Pending"), h("dd", { "data-count": "pending" }, countText(stats.counts.pending)),
            h("dt", null, "In flight (leased)"), h("dd", { "data-count": "delivered" }, countText(stats.counts.delivered)),
            h("dt", null, "Dead"), h("dd", { "data-count": "dead" }, countText(stats.counts.dead)),
            h("dt", null, "Acknowledged"), h("dd", { "data-count": "acknowledged" }, countText(stats.counts.acknowledged)),
            h("dt", null, "Oldest pending"), h("dd", null, age(stats.oldest_pending_age_seconds)),
          ]),
          h(Chart, { stats }),
        ])
      : h("p", null, "Loading…"),
    h("p", null, h("a", { href: `#/events?subscription=${encodeURIComponent(props.name)}` }, "Events of this subscription")),
    can(props.scopes, "events:ack")
      ? h("form", { class: "filters", onSubmit: replay, "aria-label": "Replay" }, [
          h("h3", null, "Replay a time range"),
          h("p", { class: "hint" }, "Delivers again the acknowledged and dead events received in the range."),
          h(Field, { label: "From", id: "replay-since", error: fieldErrors["replay-since"] }, input("replay-since", since, setSince, { type: "datetime-local", step: 1, required: true })),
          h(Field, { label: "Before", id: "replay-until", error: fieldErrors["replay-until"] }, input("replay-until", until, setUntil, { type: "datetime-local", step: 1, required: true })),
          h("div", { class: "actions" }, h("button", { type: "submit", id: "replay-submit" }, "Replay")),
        ])
      : null,
    sub && props.name !== "default"
      ? h("form", { class: "filters", onSubmit: save, "aria-label": "Edit filter" }, [
          h("h3", null, "Filter"),
          h(Field, { label: "Types", id: "s-types" }, input("s-types", filter.types, (v) => setFilter({ ...filter, types: v }))),
          h(Field, { label: "Sources", id: "s-sources" }, input("s-sources", filter.sources, (v) => setFilter({ ...filter, sources: v }))),
          h(Field, { label: "Tags", id: "s-tags" }, input("s-tags", filter.tags, (v) => setFilter({ ...filter, tags: v }))),
          h("div", { class: "actions" }, [
            h("button", { type: "submit" }, "Save filter"),
            h("button", { type: "button", class: "danger", onClick: remove }, confirmDelete ? "Really delete?" : "Delete subscription"),
          ]),
        ])
      : null,
  ]);
}

function SubscriptionsPage(props: { scopes: Scopes }) {
  const [subs, setSubs] = useState<SubscriptionView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState("");
  const [types, setTypes] = useState("");
  const load = useCallback(async () => {
    if (!can(props.scopes, "subscriptions:manage")) return setSubs([{ name: "default", filter: null }]);
    try {
      setSubs((await api<{ data: SubscriptionView[] }>("GET", "/subscriptions")).data);
    } catch (err) {
      setError(err);
    }
  }, [props.scopes]);
  useEffect(() => void load(), [load]);
  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const t = types.split(",").map((x) => x.trim()).filter(Boolean);
      await api("POST", "/subscriptions", { body: { name, filter: t.length ? { types: t } : {} } });
      setName("");
      setTypes("");
      await load();
    } catch (err) {
      setError(err);
    }
  };
  return h("section", { "aria-labelledby": "subs-h" }, [
    h("h2", { id: "subs-h" }, "Subscriptions"),
    h(ErrorBox, { error }),
    h("ul", { class: "subs" }, (subs ?? []).map((s) =>
      h("li", null, [
        h("a", { href: `#/subscriptions/${encodeURIComponent(s.name)}` }, s.name),
        h("span", { class: "hint" }, s.filter && (s.filter.types || s.filter.sources || s.filter.tags) ? ` types: ${(s.filter.types ?? ["any"]).join(", ")}; sources: ${(s.filter.sources ?? ["any"]).join(", ")}; tags: ${(s.filter.tags ?? ["any"]).join(", ")}` : " every event"),
      ]),
    )),
    can(props.scopes, "subscriptions:manage")
      ? h("form", { class: "filters", onSubmit: create, "aria-label": "Create a subscription" }, [
          h("h3", null, "New subscription"),
          h(Field, { label: "Name", id: "n-name" }, input("n-name", name, setName, { required: true, pattern: "[a-z0-9][a-z0-9._\\-]{0,63}" })),
          h(Field, { label: "Types (comma-separated, empty for all)", id: "n-types" }, input("n-types", types, setTypes)),
          h("div", { class: "actions" }, h("button", { type: "submit" }, "Create")),
        ])
      : null,
  ]);
}

/* ---------- send a test event ---------- */

function SendPage() {
  const [type, setType] = useState("test.ping");
  const [source, setSource] = useState("console");
  const [tags, setTags] = useState("");
  const [payload, setPayload] = useState('{\n  "hello": "world"\n}');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [note, setNote] = useState<ComponentChild>(null);
  const send = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setNote(null);
    let body: unknown;
    try {
      body = JSON.parse(payload);
    } catch (err) {
      return setErrors({ payload: `not JSON: ${(err as Error).message}` });
    }
    try {
      const t = tags.split(",").map((x) => x.trim()).filter(Boolean);
      const r = await api<{ id: string }>("POST", "/events", { body: { type, ...(source ? { source } : {}), ...(t.length ? { tags: t } : {}), payload: body } });
      setNote(["Accepted: ", h("a", { href: `#/events/${encodeURIComponent(r.id)}` }, r.id)]);
    } catch (err) {
      if (err instanceof ApiError && err.details.length) setErrors(Object.fromEntries(err.details.map((d) => [d.path.split(".")[0] || "form", d.message])));
      else setErrors({ form: err instanceof Error ? err.message : String(err) });
    }
  };
  return h("section", { "aria-labelledby": "send-h" }, [
    h("h2", { id: "send-h" }, "Send a test event"),
    h("form", { class: "send", onSubmit: send, noValidate: true }, [
      h(Field, { label: "Type", id: "type", error: errors.type }, input("type", type, setType, { "aria-describedby": "type-error" })),
      h(Field, { label: "Source", id: "source", error: errors.source }, input("source", source, setSource)),
      h(Field, { label: "Tags (comma-separated)", id: "tags", error: errors.tags }, input("tags", tags, setTags)),
      h(Field, { label: "Payload (JSON)", id: "payload", error: errors.payload }, h("textarea", { id: "payload", rows: 8, value: payload, onInput: (e: Event) => setPayload((e.target as HTMLTextAreaElement).value) })),
      errors.form ? h("p", { class: "error", role: "alert" }, errors.form) : null,
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Send")),
      note ? h("p", { class: "result", role: "status" }, note) : null,
    ]),
  ]);
}

/* ---------- shell ---------- */

function App() {
  const [scopes, setScopes] = useState<Scopes | null>(null);
  const [checking, setChecking] = useState(storedKey() !== null);
  const hash = useHash();
  useEffect(() => {
    if (!storedKey()) return;
    api<{ scopes: string[] }>("GET", "/key").then(
      (me) => {
        setScopes(new Set(me.scopes));
        setChecking(false);
      },
      () => {
        forgetKey();
        setChecking(false);
      },
    );
  }, []);
  if (checking) return h("p", null, "Loading…");
  if (!scopes) return h(SignIn, { onSignedIn: (s) => setScopes(new Set(s)) });
  const [route, qs] = hash.slice(1).split("?");
  const params = new URLSearchParams(qs ?? "");
  const parts = (route ?? "").split("/").filter(Boolean).map(decodeURIComponent);
  let page: ComponentChild;
  if (parts[0] === "events" && parts[1]) page = h(EventPageView, { id: parts[1], subscription: params.get("subscription") ?? "default", scopes, key: parts[1] });
  else if (parts[0] === "subscriptions" && parts[1]) page = h(SubscriptionPage, { name: parts[1], scopes, key: parts[1] });
  else if (parts[0] === "subscriptions") page = h(SubscriptionsPage, { scopes });
  else if (parts[0] === "send" && can(scopes, "events:write")) page = h(SendPage, null);
  else if (can(scopes, "inbox:read")) page = h(EventsPage, { scopes });
  else if (can(scopes, "events:write")) page = h(SendPage, null);
  else page = h("p", null, "This key may not read events.");
  const nav = [
    ["#/events", "Events", can(scopes, "inbox:read")],
    ["#/subscriptions", "Subscriptions", can(scopes, "inbox:read") || can(scopes, "subscriptions:manage")],
    ["#/send", "Send a test event", can(scopes, "events:write")],
  ] as const;
  return h("div", { class: "shell" }, [
    h("header", null, [
      h("strong", null, "Triggers"),
      h("nav", { "aria-label": "Main" }, nav.filter(([, , ok]) => ok).map(([href, label]) => h("a", { href, "aria-current": hash.startsWith(href) ? "page" : undefined }, label))),
      h("button", { type: "button", class: "secondary small", onClick: () => { forgetKey(); setScopes(null); location.hash = ""; } }, "Sign out"),
    ]),
    h("main", null, page),
  ]);
}

render(h(App, null), document.getElementById("app")!);
