/** A problem with what the user asked for or configured; the message says how to fix it. */
export class ConfigError extends Error {}
