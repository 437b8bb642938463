/** How an event's data was carried, to give it back the same way. */
export type CloudEventData = "json" | "text" | "base64" | "none";

/** The attributes of a CloudEvent the envelope has no field for (events.cloudevent). */
export interface CloudEventAttributes {
  readonly specversion: "1.0";
  readonly id: string;
  readonly subject?: string;
  readonly time?: string;
  readonly datacontenttype?: string;
  readonly dataschema?: string;
  readonly extensions?: Readonly<Record<string, string | number | boolean>>;
  readonly data: CloudEventData;
}
