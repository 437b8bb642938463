import type { Operation } from "./contract/operation";
import { ackEventByDelete, ackEventOperation, ackEventsOperation, extendLeaseOperation, nackEventOperation, redriveEventOperation } from "./routes/acks";
import { listEventsOperation } from "./routes/console-events";
import { getKeyOperation, redriveSubscriptionOperation, replaySubscriptionOperation, subscriptionStatsOperation } from "./routes/console-subscriptions";
import { createEvent, createEvents, getEventOperation } from "./routes/events";
import { healthz, metrics, openapi, readyz } from "./routes/health";
import { getInbox } from "./routes/inbox";
import { deleteSchemaOperation, getSchemaOperation, listSchemasOperation, registerSchemaOperation } from "./routes/schemas";
import {
  createSubscriptionOperation,
  deleteSubscriptionOperation,
  getSubscriptionOperation,
  listSubscriptionsOperation,
  updateSubscriptionOperation,
} from "./routes/subscriptions";

/**
 * Every operation of the HTTP API, each declared once in its routes/ file. The dispatcher
 * (contract/dispatch.ts) with its request validators and /openapi.json
 * (contract/document.ts) are derived from this list; nothing else registers an API operation (the
 * console's static page and assets, not API operations, are served beside it: routes/console.ts).
 */
export const ROUTE_TABLE: readonly Operation[] = [
  createEvent,
  createEvents,
  listEventsOperation,
  ackEventsOperation,
  getEventOperation,
  ackEventOperation,
  ackEventByDelete,
  nackEventOperation,
  extendLeaseOperation,
  redriveEventOperation,
  getInbox,
  createSubscriptionOperation,
  listSubscriptionsOperation,
  getSubscriptionOperation,
  updateSubscriptionOperation,
  deleteSubscriptionOperation,
  replaySubscriptionOperation,
  redriveSubscriptionOperation,
  subscriptionStatsOperation,
  getKeyOperation,
  registerSchemaOperation,
  listSchemasOperation,
  getSchemaOperation,
  deleteSchemaOperation,
  healthz,
  readyz,
  metrics,
  openapi,
];
