// A real authorization server for jwtmint's integration tests: panva's oidc-provider
// (OpenID Certified), configured for the client_credentials grant and every token endpoint
// client authentication method, listening on 127.0.0.1 over plain http.
//
//   node server.mjs config.json
//
// config.json: {
//   "clients": [oidc-provider client metadata, ...],   // registered at start
//   "port": 0,                                          // 0: any free port
//   "resource_scopes": ["api.read", ...],               // optional: the scopes the API knows
//   "require_issuer_audience": false,                   // optional: see below
//   "access_token_ttl": 300,                            // optional: seconds
//   "dpop": false,                                      // optional: DPoP (RFC 9449), see below
//   "dpop_require_nonce": false,                        // optional: nonces required
//   "dpop_algorithms": ["ES256", ...]                   // optional: DPoP proof algorithms
// }
//
// stdout carries exactly one line, `READY <issuer>`, once the server listens; everything else
// (oidc-provider's notices included) goes to stderr. The server exits when stdin closes, so
// it cannot outlive the test process that started it, and on SIGTERM/SIGINT.
//
// What oidc-provider 9.13.3 does with client assertions (lib/shared/jwt_client_auth.js):
// - `aud` must be (or, for an array, contain) one of: the issuer identifier, the token
//   endpoint URL, or the URL of the endpoint being called (the same URL at the token
//   endpoint; the introspection/revocation URL there). So accepting an assertion does NOT
//   prove that the client sent aud = issuer. Only FAPI 2.0 profiles narrow it to the issuer
//   alone; `require_issuer_audience: true` below applies that rule (draft-ietf-oauth-
//   rfc7523bis) through the assertJwtClientAuthClaimsAndHeader hook.
// - `exp`, `jti` and `iss` (= client_id) are required; the signature is checked with
//   `clockTolerance` (oidc-provider's default 15 s; 5 s here); `alg` must equal the client's
//   token_endpoint_auth_signing_alg when registered, else be one of
//   enabledJWA.clientAuthSigningAlgValues of the right kind (HS* for client_secret_jwt).
// - jti replay: ReplayDetection stores sha256(iss + jti) until exp + clockTolerance, then
//   refuses a second use ("client assertion tokens must only be used once", invalid_client).
//   With the default in-memory adapter (used here) the store is one process-wide LRU with
//   maxSize 1000 shared by every model (access tokens, client credentials, replay entries,
//   ...): two generations of up to 1000 entries, so between 1000 and ~2000 recent entries are
//   remembered; an older jti can fall out before it expires. The check is find-then-save,
//   not atomic. Production deployments use a persistent adapter instead.
// - client_credentials with resource indicators: requested scopes the resource server does
//   not list are silently dropped from the token (the response `scope` is narrower); only a
//   scope declared in the provider's `scopes` that the client's registered `scope` does not
//   allow gives `invalid_scope` (400, with a non-standard "scope" member naming it).
// - invalid_client answers are 401 with error_description "client authentication failed"
//   whatever the reason (bad signature, replayed jti, wrong aud or alg): the reason is only
//   in the server's error_debug, which it does not send.
// - Plain http is fine: the issuer only has to be a web URI, and nothing in the
//   client_credentials flow insists on https; no `proxy` setting is needed since nothing
//   sits in front of the server. On Node 20 it warns "Unsupported runtime" (to stderr).
//
//
// DPoP (RFC 9449; lib/helpers/validate_dpop.js, lib/helpers/challenge.js). oidc-provider 9
// enables features.dPoP by default (without nonces); here it is off unless `dpop: true`, so
// that every other server is a plain bearer-token server that ignores a DPoP header.
// With `dpop: true`:
// - nonceSecret is 32 random bytes drawn at start, so the server issues nonces: a nonce is
//   HKDF(secret, 60 s time step), `DPoP-Nonce` on responses carries the value of the NEXT
//   step, and steps -2..+2 around now are accepted. A proof without a nonce (or with a stale
//   one) gets a fresh `DPoP-Nonce` on its response, even a successful one.
// - `dpop_require_nonce: true` makes features.dPoP.requireNonce answer true: a proof without
//   a nonce is refused 400 {error: "use_dpop_nonce"} with a `DPoP-Nonce` header. A proof with
//   a nonce is not checked for `iat` freshness at all; one without must have |now - iat| <= 300 s.
// - At the token endpoint client authentication runs BEFORE the DPoP proof is checked (the
//   grant handler checks it), so a refused attempt has already spent its client assertion's
//   jti: a retry needs a new assertion as well as a new proof.
// - The proof is verified with its embedded `jwk` (jose's EmbeddedJWK), typ `dpop+jwt`, alg in
//   enabledJWA.dPoPSigningAlgValues (`dpop_algorithms`; oidc-provider's default is ES256,
//   Ed25519 and EdDSA only; Ed25519 is the fully-specified name, EdDSA the polymorphic one).
//   Any failure there is 400 {error: "invalid_dpop_proof", error_description: "invalid DPoP
//   key binding"}; htm, htu (compared without query and fragment), ath, jti and iat
//   have their own descriptions. The proof's jti is kept by ReplayDetection (per client) for
//   300 s: a replayed proof is 400 invalid_grant (lib/helpers/grant_common.js).
// - A client registered with `dpop_bound_access_tokens: true` that sends no proof is refused
//   400 invalid_grant (lib/helpers/sender_constraints.js). InvalidGrant's error_description
//   is always "grant request is invalid": the reason ("DPoP proof JWT not provided", "DPoP
//   proof JWT Replay detected") is only in error_detail, which is not sent (lib/helpers/errors.js,
//   lib/helpers/err_out.js). A client without that flag may still send a proof
//   and gets a bound token; a bound token is `token_type: "DPoP"`, and introspection answers
//   `cnf: {jkt}` (the RFC 7638 thumbprint) and `token_type: "DPoP"` for it.
//
// Test-only endpoints:
// - GET /_test/grants lists every token the server issued, in order: {client_id,
//   auth_method, scope, assertion: {header, claims} or null, dpop: {header, claims} of the
//   DPoP proof the server accepted, or null, jkt: the thumbprint the token is bound to, or
//   null}, so that tests can count token requests and check aud, jti, typ... as the server
//   saw them.
// - GET /_test/token_requests lists every answered POST to the token endpoint, refused or
//   not, in order: {client_id (authenticated, else as claimed), status, error (or null),
//   error_description, token_type, assertion, dpop (as above, as sent, decoded without any
//   check), dpop_nonce: the DPoP-Nonce header of the answer or null}.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

// oidc-provider prints notices with console.info/console.log: keep stdout for READY alone
console.info = console.error;
console.log = console.error;

const { default: Provider, errors } = await import('oidc-provider');

const RESOURCE = 'urn:jwtmint:api';
const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node server.mjs config.json');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const resourceScopes = config.resource_scopes ?? ['api.read', 'api.write', 'api.admin'];
const accessTokenTTL = config.access_token_ttl ?? 300;
const requireIssuerAudience = config.require_issuer_audience === true;
const dpop = config.dpop === true;
const dpopRequireNonce = config.dpop_require_nonce === true;
// every asymmetric algorithm jwtmint signs proofs with (oidc-provider's default is narrower)
const dpopAlgorithms = config.dpop_algorithms
  ?? ['ES256', 'ES384', 'ES512', 'PS256', 'RS256', 'Ed25519', 'EdDSA'];

const grants = [];
const tokenRequests = [];

function decodeSegment(segment) {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

// header and claims of a compact JWS, unverified; `{undecodable: true}` for anything else
function decodeJws(value) {
  if (typeof value !== 'string' || !value) {
    return null;
  }
  try {
    const [header, claims] = value.split('.', 2).map(decodeSegment);
    return { header, claims };
  } catch {
    return { undecodable: true };
  }
}

// listen first, so that the issuer carries the real port
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

// the provider's own signing key (ID tokens, JWT access tokens): ephemeral, so that it does
// not fall back to its development keystore and warn about it
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const providerJwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: config.clients,
  // the provider's key is ES256 (above); oidc-provider's client default would be RS256
  clientDefaults: {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    id_token_signed_response_alg: 'ES256',
  },
  jwks: { keys: [providerJwk] },
  scopes: ['openid', 'offline_access', ...resourceScopes],
  clockTolerance: 5,
  clientAuthMethods: [
    'private_key_jwt',
    'client_secret_jwt',
    'client_secret_basic',
    'client_secret_post',
  ],
  enabledJWA: {
    dPoPSigningAlgValues: dpopAlgorithms,
    clientAuthSigningAlgValues: [
      'RS256', 'RS384', 'RS512',
      'PS256', 'PS384', 'PS512',
      'ES256', 'ES384', 'ES512',
      'Ed25519', 'EdDSA',
      'HS256', 'HS384', 'HS512',
    ],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    dPoP: dpop
      ? {
        enabled: true,
        nonceSecret: randomBytes(32),
        requireNonce: () => dpopRequireNonce,
      }
      : { enabled: false },
    resourceIndicators: {
      enabled: true,
      // client_credentials without a resource parameter: this API. Without a default
      // resource, oidc-provider keeps only OpenID scopes and drops api.* silently.
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: resourceScopes.join(' '),
          accessTokenFormat: 'opaque',
          accessTokenTTL,
        };
      },
    },
  },
  ttl: {
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
  },
  async assertJwtClientAuthClaimsAndHeader(ctx, claims) {
    if (requireIssuerAudience && claims.aud !== issuer) {
      throw new errors.InvalidClientAuth('audience (aud) must equal the issuer identifier');
    }
  },
});

provider.on('grant.success', (ctx) => {
  const { client, params, entities } = ctx.oidc;
  const token = entities?.ClientCredentials;
  grants.push({
    client_id: client?.clientId,
    auth_method: client?.clientAuthMethod,
    scope: token?.scope ?? null,
    assertion: decodeJws(params?.client_assertion),
    // the proof validate_dpop.js accepted for this grant (it keeps its own copy private)
    dpop: token?.jkt ? decodeJws(ctx.get('DPoP')) : null,
    jkt: token?.jkt ?? null,
  });
});

// every answer of the token endpoint, refusals included (grant.success sees only tokens);
// provider.use runs before the router, so after next() the answer is complete
provider.use(async (ctx, next) => {
  try {
    await next();
  } finally {
    if (ctx.method === 'POST' && ctx.oidc?.route === 'token') {
      const body = ctx.oidc.body ?? {};
      const assertion = decodeJws(body.client_assertion);
      const answer = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
      tokenRequests.push({
        client_id: ctx.oidc.client?.clientId ?? body.client_id
          ?? assertion?.claims?.iss ?? null,
        status: ctx.status,
        error: answer.error ?? null,
        error_description: answer.error_description ?? null,
        token_type: answer.token_type ?? null,
        assertion,
        dpop: decodeJws(ctx.get('DPoP')),
        dpop_nonce: ctx.response.get('DPoP-Nonce') || null,
      });
    }
  }
});

// static clients are validated lazily, on first use: validate them now, so that bad metadata
// fails the start instead of a test's token request
for (const { client_id: clientId } of config.clients) {
  try {
    await provider.Client.find(clientId);
  } catch (error) {
    console.error(`client ${clientId}: ${error.error_description ?? error.message}`);
    process.exit(1);
  }
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const record = req.method === 'GET' && {
    '/_test/grants': grants,
    '/_test/token_requests': tokenRequests,
  }[req.url];
  if (record) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(record));
    return;
  }
  callback(req, res);
});

function shutdown() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();

process.stdout.write(`READY ${issuer}\n`);
