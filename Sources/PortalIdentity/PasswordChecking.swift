import PortalCrypto

/// Hashes new passwords and checks passwords against stored hashes (scrypt in production).
public protocol PasswordChecking: Sendable {
    /// A new salted hash of `password`.
    func hash(_ password: String) async throws -> String
    /// Whether `password` matches `encodedHash`.
    func verify(_ password: String, against encodedHash: String) async throws -> Bool
}

extension PasswordHasher: PasswordChecking {}
