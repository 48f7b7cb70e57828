const SECRET_KEY = /(^|_)(password|secret|private_key|token|key|api_key|passphrase|webhook_url)$/i;

/**
 * A copy of value with every secret-looking field replaced by "[redacted]" (for logs and audit rows).
 * `webhook_url` is a Slack incoming-webhook URL: the URL itself is the credential.
 */
export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined ? '[redacted]' : redactSecrets(v);
    }
    return out as T;
  }
  return value;
}
