#!/usr/bin/env node
/*
 * Entry point of an ingest worker process (SQS -> Postgres): `node dist/workers/ingest.js` runs
 * the same process as `triggers worker`. Its services are built by src/roles/worker.ts.
 */
import { runRoleProcess } from "../src/roles/run";

runRoleProcess("worker");
