import type { Static, TObject, TSchema } from "@sinclair/typebox";
import type { Context } from "koa";
import type { ErrorCode } from "../../errors";
import type { Scope } from "../../store/api-keys";
import type { ApiDeps } from "../deps";
import type { DeliveryBudget } from "../middleware/delivery-budget";

/*
 * One operation of the HTTP API, declared once: the route table (src/api/route-table.ts) lists
 * them, and the dispatcher, the request validators, the handlers' input types and /openapi.json
 * are all derived from it (src/api/contract/).
 */

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** What handlers are built from: the API's services and the tenants' delivery-rows budget. */
export interface RouteDeps extends ApiDeps {
  readonly budget: DeliveryBudget;
  /** /openapi.json, serialised once. */
  readonly openApiJson: string;
}

/** A documented response header. */
export interface HeaderDoc {
  readonly description: string;
  readonly required?: boolean;
  readonly schema: object;
}

/** A success response: its schema (JSON unless contentType says otherwise) and headers. */
export interface SuccessResponse {
  readonly description: string;
  readonly schema?: TSchema;
  readonly contentType?: string;
  /** Other media types the operation answers (Accept negotiation), each with its schema. */
  readonly alternatives?: Readonly<Record<string, TSchema>>;
  readonly headers?: Readonly<Record<string, HeaderDoc | string>>;
}

/** A request header parameter the handler reads (validated by the handler, documented here). */
export interface HeaderParam {
  readonly name: string;
  readonly description: string;
  readonly schema: TSchema;
}

/** A JSON request body: its schema, its size limit, and who validates it. */
export interface BodySpec<B extends TSchema = TSchema> {
  readonly schema: B;
  readonly required: boolean;
  readonly description?: string;
  /** Largest body, bytes (413 past it). */
  readonly limit: (deps: RouteDeps) => number;
  /**
   * "table" (default): read and validated before the handler, which gets it typed. "handler": the
   * handler reads and validates it (POST /events and /events/batch, whose hot path needs the raw
   * bytes and a compiled envelope check of its own); the schema still documents it.
   */
  readonly read?: "table" | "handler";
  /**
   * Other media types the handler reads (read: "handler" only), each with its schema, or null for
   * a body of any media type (CloudEvents binary mode: the body is the event's data).
   */
  readonly alternatives?: Readonly<Record<string, TSchema | null>>;
}

/** The error statuses an operation may add to the ones every operation has. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 408 | 409 | 413 | 414 | 415 | 422 | 429 | 431 | 500 | 503;

type Maybe<S> = S extends TSchema ? Static<S> : undefined;

/** What a handler receives besides the context: the validated (and coerced) path, query and body. */
export interface Input<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
}

export type Handler<P = unknown, Q = unknown, B = unknown> = (ctx: Context, input: Input<P, Q, B>) => Promise<void> | void;

export interface OperationSpec<P extends TObject | undefined = TObject | undefined, Q extends TSchema | undefined = TSchema | undefined, B extends TSchema | undefined = TSchema | undefined> {
  readonly id: string;
  readonly method: HttpMethod;
  /** OpenAPI form: /events/{id}. */
  readonly path: string;
  readonly summary: string;
  readonly description?: string;
  readonly tag: "events" | "inbox" | "subscriptions" | "schemas" | "operations";
  /** The API-key scope it needs; "any": a valid key of any scope; null: public (no key, no rate limit). */
  readonly scope: Scope | "any" | null;
  /** Path parameters; a value that fails its schema answers 404 (what cannot exist is not found). */
  readonly params?: P;
  /** Query parameters: an object, or a union of objects (modes), each with additionalProperties false. */
  readonly query?: Q;
  readonly headers?: readonly HeaderParam[];
  readonly body?: B extends TSchema ? BodySpec<B> : undefined;
  readonly responses: Readonly<Record<number, SuccessResponse>>;
  /** Error codes this operation adds, by status, to those every operation of its kind may carry. */
  readonly errors?: Partial<Record<ErrorStatus, readonly ErrorCode[]>>;
  /** Rules JSON Schema cannot state (listed in the document as x-rules), each with what breaking it answers. */
  readonly rules?: readonly string[];
  readonly handler: (deps: RouteDeps) => Handler<Static<NonNullable<P>>, Maybe<Q>, Maybe<B>>;
  /** GET only: what HEAD runs instead of the GET handler (when GET has effects HEAD must not have). */
  readonly head?: (deps: RouteDeps) => Handler<Static<NonNullable<P>>, Maybe<Q>, Maybe<B>>;
}

/** An operation of the table, its handler's input erased. */
export type Operation = OperationSpec<TObject | undefined, TSchema | undefined, TSchema | undefined> & {
  readonly handler: (deps: RouteDeps) => Handler<never, never, never>;
};

/** Declares an operation; the handler's input types follow from its schemas. */
export function operation<P extends TObject | undefined = undefined, Q extends TSchema | undefined = undefined, B extends TSchema | undefined = undefined>(spec: OperationSpec<P, Q, B>): Operation {
  return spec as unknown as Operation;
}
