#!/usr/bin/env node
/*
 * Entry point of a scheduler process (event expiry on BullMQ, or a timer without REDIS_URL):
 * `node dist/workers/scheduler.js` runs the same process as `triggers scheduler`. Its services
 * are built by src/roles/scheduler.ts.
 */
import { runRoleProcess } from "../src/roles/run";

runRoleProcess("scheduler");
