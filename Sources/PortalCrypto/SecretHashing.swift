internal import COpenSSL

/// Password and secret hashing with OpenSSL: scrypt for passwords, SHA-256 for random tokens,
/// and constant-time comparison for both.
///
/// Passwords are low-entropy, so they get a memory-hard KDF with a per-password salt; session tokens
/// and invite secrets are 256 random bits, for which one SHA-256 is enough and lets them be looked up.
public enum SecretHashing {
    /// scrypt cost parameters; the encoded hash records them, so they can change without migration.
    public struct ScryptParameters: Sendable, Equatable {
        /// CPU/memory cost, a power of two.
        public var n: UInt64
        /// Block size.
        public var r: UInt64
        /// Parallelism.
        public var p: UInt64

        /// N = 2^15, r = 8, p = 1: 32 MiB and tens of milliseconds per hash.
        public static let standard = ScryptParameters(n: 1 << 15, r: 8, p: 1)

        /// Creates parameters.
        public init(n: UInt64, r: UInt64, p: UInt64) {
            self.n = n
            self.r = r
            self.p = p
        }
    }

    /// `count` cryptographically secure random bytes.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        precondition(result == 1, "OpenSSL RAND_bytes failed")
        return bytes
    }

    /// A new random token: 32 bytes as unpadded base64url (43 characters).
    public static func newToken() -> String {
        UnpaddedBase64.encode(randomBytes(32), urlSafe: true)
    }

    /// SHA-256 of `text`'s UTF-8 bytes.
    public static func sha256(_ text: String) -> [UInt8] {
        sha256(bytes: Array(text.utf8))
    }

    /// SHA-256 of `bytes`.
    public static func sha256(bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let result = bytes.withUnsafeBytes { data in
            digest.withUnsafeMutableBufferPointer { output in
                EVP_Digest(data.baseAddress, data.count, output.baseAddress, &length, EVP_sha256(), nil)
            }
        }
        precondition(result == 1 && length == 32, "OpenSSL SHA-256 failed")
        return digest
    }

    /// HMAC-SHA256 of `message` under `key`.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { key in
            message.withUnsafeBytes { message in
                digest.withUnsafeMutableBufferPointer { output in
                    HMAC(
                        EVP_sha256(), key.baseAddress, Int32(key.count),
                        message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count,
                        output.baseAddress, &length)
                }
            }
        }
        precondition(result != nil && length == 32, "OpenSSL HMAC-SHA256 failed")
        return digest
    }

    /// Whether two byte strings are equal, taking the same time wherever they differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { left in
            b.withUnsafeBytes { right in CRYPTO_memcmp(left.baseAddress, right.baseAddress, a.count) == 0 }
        }
    }

    /// Hashes a password with scrypt and a fresh 16-byte salt: `scrypt$N$r$p$salt$hash` (base64).
    public static func hashPassword(_ password: String, parameters: ScryptParameters = .standard) -> String {
        let salt = randomBytes(16)
        let key = scrypt(password, salt: salt, parameters: parameters)
        return
            "scrypt$\(parameters.n)$\(parameters.r)$\(parameters.p)$\(UnpaddedBase64.encode(salt))$\(UnpaddedBase64.encode(key))"
    }

    /// Whether `password` matches an encoded hash from `hashPassword`, compared in constant time.
    public static func verifyPassword(_ password: String, against encoded: String) -> Bool {
        let parts = encoded.split(separator: "$").map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let n = UInt64(parts[1]), let r = UInt64(parts[2]),
            let p = UInt64(parts[3])
        else {
            return false
        }
        let expected = UnpaddedBase64.decode(parts[5]) ?? []
        let actual = scrypt(
            password, salt: UnpaddedBase64.decode(parts[4]) ?? [], parameters: ScryptParameters(n: n, r: r, p: p))
        return constantTimeEqual(actual, expected)
    }

    /// A hash with the cost of a real one, for answering unknown accounts in the same time as known ones.
    public static let decoyPasswordHash = hashPassword("decoy password that never matches")

    private static func scrypt(_ password: String, salt: [UInt8], parameters: ScryptParameters) -> [UInt8] {
        var key = [UInt8](repeating: 0, count: 32)
        let passwordBytes = Array(password.utf8)
        let maxMemory = 128 * parameters.r * parameters.n * 2 + (1 << 20)
        let result = passwordBytes.withUnsafeBytes { pass in
            salt.withUnsafeBufferPointer { saltBytes in
                key.withUnsafeMutableBufferPointer { output in
                    EVP_PBE_scrypt(
                        pass.baseAddress?.assumingMemoryBound(to: CChar.self), pass.count, saltBytes.baseAddress,
                        saltBytes.count,
                        parameters.n, parameters.r, parameters.p, maxMemory, output.baseAddress, output.count)
                }
            }
        }
        precondition(result == 1, "OpenSSL scrypt failed")
        return key
    }
}
