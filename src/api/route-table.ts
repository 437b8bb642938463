import type { Operation } from "./contract/operation";
import { ackEventByDelete, ackEventOperation, ackEventsOperation, extendLeaseOperation, nackEventOperation, redriveEventOperation } from "./routes/acks";
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
 * (contract/dispatch.ts), the request validators (contract/validate.ts) and /openapi.json
 * (contract/document.ts) are derived from this list; nothing else registers a route.
 */
export const ROUTE_TABLE: readonly Operation[] = [
  createEvent,
  createEvents,
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
  registerSchemaOperation,
  listSchemasOperation,
  getSchemaOperation,
  deleteSchemaOperation,
  healthz,
  readyz,
  metrics,
  openapi,
];
