// totp.mjs: an RFC 6238 code (HMAC-SHA-1, 30 s steps, 6 digits), as an
// authenticator app computes it, for the tests.
//   node totp.mjs BASE32SECRET STEP    prints the code of time step STEP
import crypto from 'node:crypto';

const [secret, step] = process.argv.slice(2);
const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
let bits = '';
for (const ch of secret.toUpperCase().replace(/=+$/, '')) {
  const v = alpha.indexOf(ch);
  if (v < 0) throw new Error(`not base32: ${ch}`);
  bits += v.toString(2).padStart(5, '0');
}
const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
const msg = Buffer.alloc(8);
msg.writeBigUInt64BE(BigInt(step));
const h = crypto.createHmac('sha1', key).update(msg).digest();
const o = h[19] & 15;
console.log(String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0'));
