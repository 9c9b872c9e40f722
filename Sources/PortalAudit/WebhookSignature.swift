import PortalCrypto

/// How deliveries are signed: `Portal-Signature: v1=<hex>` where hex is HMAC-SHA256, keyed with the
/// endpoint's secret (its UTF-8 text, `whsec_…`), over `<Portal-Timestamp>.<body>`. During a
/// rotation's overlap the header carries one `v1=` per secret, comma-separated; a receiver accepts a
/// delivery when any of them matches its secret (compared in constant time) and the timestamp is recent.
enum WebhookSignature {
    /// A new secret: `whsec_` and 32 random bytes, base64url.
    static func newSecret() -> String { "whsec_" + SecretHashing.newToken() }

    /// The `Portal-Signature` header's value for `body` sent at `timestamp` (Unix seconds).
    static func header(secrets: [String], timestamp: Int64, body: [UInt8]) -> String {
        let message = Array("\(timestamp).".utf8) + body
        return secrets.map { secret in
            "v1="
                + SecretHashing.hmacSHA256(key: Array(secret.utf8), message: message)
                .map { String(format: "%02x", $0) }.joined()
        }.joined(separator: ",")
    }
}
