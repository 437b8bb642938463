import type { SubscriptionRow } from "../../store/subscriptions";
import type { SubscriptionView } from "../contract/schemas";

/** The public JSON shape of a subscription (the internal id is never shown). */
export function subscriptionView(row: SubscriptionRow): SubscriptionView {
  const filter: Record<string, string[]> = {};
  if (row.filter_types !== null) filter.types = row.filter_types;
  if (row.filter_sources !== null) filter.sources = row.filter_sources;
  if (row.filter_tags !== null) filter.tags = row.filter_tags;
  return { name: row.name, filter, created_at: new Date(row.created_at).toISOString(), updated_at: new Date(row.updated_at).toISOString() };
}
