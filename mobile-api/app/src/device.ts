// The device's identity: an Ed25519 key pair made by WebCrypto that can
// never leave the browser (non-extractable), kept in IndexedDB, and the
// ids the server gave this device when it enrolled (API.md "Identity").
import { ApiError, base64url, hex, request, toBase64, uuid } from "./api";
import * as kv from "./kv";

export interface CircleInfo {
  circle_id: string;
  name: string;
  epoch: number;
  docs: Record<string, string>;
  // ballots_closed: the member's earlier ballots documents (the server
  // opens a new one once one is full); what the phone wrote offline into
  // one of them still counts once synced.
  members: { member_id: string; name: string; ledgers: string[]; ballots: string; ballots_closed?: string[] }[];
}

export interface Device {
  circleId: string;
  memberId: string;
  deviceId: string;
  memberName: string;
  // actor is the automerge actor id this device writes with; the server
  // knows it from enrolment and refuses changes by any other actor.
  actor: string;
  keys: CryptoKeyPair;
  circle?: CircleInfo;
}

interface Token {
  value: string;
  expiresAt: number; // ms since the epoch
}

// ASSERTION_SECONDS is how long a token assertion is valid (API.md: at
// most 5 minutes).
const ASSERTION_SECONDS = 120;

export function loadDevice(): Promise<Device | undefined> {
  return kv.get<Device>("device");
}

export function saveDevice(d: Device): Promise<void> {
  return kv.put("device", d);
}

// enroll makes the device key and actor id, takes the invite, and stores
// the device. It throws an ApiError for a refused invite.
export async function enroll(invite: string, memberName: string): Promise<{ device: Device; token: string }> {
  if (!window.isSecureContext || !crypto.subtle) {
    throw new Error("this page must be opened over HTTPS (or on localhost): the browser only makes device keys there");
  }
  let keys: CryptoKeyPair;
  try {
    keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  } catch (err) {
    throw new Error(
      `this browser cannot make an Ed25519 device key (${(err as Error).name}); update it: Safari 17, Chrome 137 or Firefox 129 and later can`,
    );
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  const actor = hex(crypto.getRandomValues(new Uint8Array(16)));
  const res = await request<{ circle_id: string; member_id: string; device_id: string; access_token: string; expires_in: number }>(
    "POST",
    "/v1/enroll",
    { invite, member_name: memberName, device_name: deviceName(), public_key: toBase64(raw), actor_id: actor },
  );
  const device: Device = {
    circleId: res.circle_id,
    memberId: res.member_id,
    deviceId: res.device_id,
    memberName,
    actor,
    keys,
  };
  // The member's name is the circle's: a device invite adds this phone
  // to an existing member, whatever name was typed (or none).
  try {
    const circle = await request<CircleInfo>("GET", "/v1/circle", undefined, res.access_token);
    device.circle = circle;
    device.memberName = circle.members.find((m) => m.member_id === res.member_id)?.name || memberName;
  } catch {
    // the first sync fills the circle in; the typed name stands until then
  }
  await saveDevice(device);
  await kv.put("token", { value: res.access_token, expiresAt: Date.now() + res.expires_in * 1000 } satisfies Token);
  return { device, token: res.access_token };
}

function deviceName(): string {
  const ua = navigator.userAgent;
  if (/iPhone/.test(ua)) return "iPhone";
  if (/Android/.test(ua)) return "Android phone";
  return "Web browser";
}

// signJWT signs claims with the device key as an EdDSA JWT whose kid is
// the device id.
export async function signJWT(d: Device, claims: Record<string, unknown>): Promise<string> {
  const enc = new TextEncoder();
  const head = base64url(enc.encode(JSON.stringify({ alg: "EdDSA", typ: "JWT", kid: d.deviceId })));
  const body = base64url(enc.encode(JSON.stringify(claims)));
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, d.keys.privateKey, enc.encode(head + "." + body));
  return head + "." + body + "." + base64url(new Uint8Array(sig));
}

// Session makes authenticated calls, trading a fresh device assertion for
// an access token when the one it has is about to expire or is refused.
export class Session {
  #token?: Token;

  constructor(readonly device: Device) {}

  async token(force = false): Promise<string> {
    this.#token ??= await kv.get<Token>("token");
    if (!force && this.#token && this.#token.expiresAt - Date.now() > 30_000) return this.#token.value;
    const now = Math.floor(Date.now() / 1000);
    const assertion = await signJWT(this.device, {
      iss: this.device.deviceId,
      aud: this.device.circleId,
      iat: now,
      exp: now + ASSERTION_SECONDS,
      jti: uuid(),
    });
    const res = await request<{ access_token: string; expires_in: number }>("POST", "/v1/token", { assertion });
    this.#token = { value: res.access_token, expiresAt: Date.now() + res.expires_in * 1000 };
    await kv.put("token", this.#token);
    return this.#token.value;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await request<T>(method, path, body, await this.token());
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        return request<T>(method, path, body, await this.token(true));
      }
      throw err;
    }
  }
}
