/** Reading the errors dockerode rejects with: the engine's HTTP status and its own message. */

/** The engine's HTTP status (404 no such object, 409 conflict, …); undefined when it never answered. */
export function engineStatus(e: unknown): number | undefined {
  return (e as { statusCode?: number }).statusCode;
}

/** The engine's message when it answered with one, else the error's own. */
export function engineMessage(e: unknown): string {
  const err = e as { json?: { message?: string }; message?: string };
  return err.json?.message ?? err.message ?? String(e);
}
