/** A command line the `triggers` command cannot run: reported without a stack trace, exit status 2. */
export class UsageError extends Error {}
