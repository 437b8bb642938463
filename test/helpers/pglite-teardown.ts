import { rmSync } from "node:fs";

/** Removes the template data dir made by pglite-setup.ts. */
export default async function pgliteTeardown(): Promise<void> {
  const root = process.env.TEST_PGLITE_TEMPLATE;
  if (root) rmSync(root, { recursive: true, force: true });
}
