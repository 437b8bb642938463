/** A started role: close() stops its services in order, leaving the container's clients to whoever built the container. */
export interface RunningRole {
  close(): Promise<void>;
}
