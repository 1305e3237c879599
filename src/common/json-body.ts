/** The JSON of an HTTP answer's body; null when it is empty or not JSON (an error page, a proxy's text). */
export async function jsonBody(res: Response): Promise<unknown> {
  const text = await res.text().catch(() => '');
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
