// Looks up BINs with the binlookup client, its base URL set to card-lookup's HTTP port, and
// prints one JSON line a BIN: {"bin", "answer"} or {"bin", "error"} (the client's error for a
// 404 or a 400). Usage: node lookup.js http://127.0.0.1:PORT/ BIN...
'use strict';

const binlookup = require('binlookup');

async function main() {
  const [url, ...bins] = process.argv.slice(2);
  const lookup = binlookup({ url });
  for (const bin of bins) {
    try {
      console.log(JSON.stringify({ bin, answer: await lookup(bin) }));
    } catch (error) {
      console.log(JSON.stringify({ bin, error: String(error && (error.message || error)) }));
    }
  }
}

main();
