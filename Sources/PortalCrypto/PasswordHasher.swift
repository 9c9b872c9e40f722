import NIOPosix

/// Hashes and checks passwords on NIO's blocking thread pool: scrypt is deliberately slow and must
/// never hold up an event loop or Swift's cooperative threads.
public struct PasswordHasher: Sendable {
    /// scrypt cost for new hashes.
    public let parameters: SecretHashing.ScryptParameters

    /// A hasher using `parameters` for new hashes (existing hashes carry their own).
    public init(parameters: SecretHashing.ScryptParameters = .standard) {
        self.parameters = parameters
    }

    /// A new salted hash of `password`.
    public func hash(_ password: String) async throws -> String {
        let parameters = self.parameters
        return try await NIOThreadPool.singleton.runIfActive {
            SecretHashing.hashPassword(password, parameters: parameters)
        }
    }

    /// Whether `password` matches `encodedHash`, in constant time.
    public func verify(_ password: String, against encodedHash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { SecretHashing.verifyPassword(password, against: encodedHash) }
    }
}
