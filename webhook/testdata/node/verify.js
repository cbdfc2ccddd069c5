// Reads {"secret": "...", "headers": {...}, "body": "..."} on stdin and verifies it with the
// standardwebhooks package. Prints "ok <type>" and exits 0, or prints the error and exits 1.
const { Webhook } = require("standardwebhooks");
let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const { secret, headers, body } = JSON.parse(input);
  try {
    const payload = new Webhook(secret).verify(body, headers);
    console.log("ok " + payload.type);
  } catch (e) {
    console.log("rejected: " + e.message);
    process.exit(1);
  }
});
