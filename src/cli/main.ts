#!/usr/bin/env node
/*
 * The `triggers` CLI's entry point. `healthcheck`, the container health probe Docker and ECS run
 * every few seconds, is dispatched before anything else is loaded: it needs node:http only, while
 * loading the application (configuration, AWS SDK, Prisma, Koa) costs over half a CPU-second, more
 * than the probe's timeout allows on a quarter vCPU. Every other command is loaded by ./commands.
 */
import type * as Commands from "./commands";
import type * as Healthcheck from "./healthcheck";

const argv = process.argv.slice(2);
if (argv[0] === "healthcheck") (require("./healthcheck") as typeof Healthcheck).cmdHealthcheck();
else (require("./commands") as typeof Commands).runCli(argv);
