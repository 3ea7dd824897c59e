// Webhook deliveries checked by the npm package standardwebhooks (a
// verifier nobody here wrote), for tests/api/test_webhooks.py: reads
// {"secret", "messages": [{"headers", "body"}]} from the file named on the
// command line and prints a JSON array, "ok" or "refused" per message.
import { readFileSync } from "node:fs";
import sw from "standardwebhooks";

const { secret, messages } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const wh = new sw.Webhook(secret);
const out = messages.map(({ headers, body }) => {
  try {
    const payload = wh.verify(body, headers);
    return payload && typeof payload.type === "string" ? "ok" : "refused";
  } catch (e) {
    if (e instanceof sw.WebhookVerificationError) return "refused";
    throw e;
  }
});
console.log(JSON.stringify(out));
