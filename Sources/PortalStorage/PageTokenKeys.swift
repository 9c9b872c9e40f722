import Foundation
import PortalCrypto

/// The keys that sign page tokens (HMAC-SHA256), so a token cannot be edited, moved to another list,
/// organization or filter, or kept beyond its lifetime.
///
/// Every instance of a service must share the signing key; the previous key is still accepted while
/// a new one rolls out. Without a configured key each process draws a random one.
public struct PageTokenKeys: Sendable {
    /// How long a page token stays valid: a day, in milliseconds.
    public static let lifetime: Int64 = 24 * 3600 * 1000
    /// Shortest key accepted from configuration.
    public static let minimumKeyLength = 32

    private let signing: [UInt8]
    private let verifying: [[UInt8]]
    private let clock: @Sendable () -> Int64

    /// Keys from configuration: `current` signs, it and `previous` verify.
    public init(
        current: String, previous: [String] = [], clock: @escaping @Sendable () -> Int64 = PageTokenKeys.now
    ) throws {
        for key in [current] + previous where key.utf8.count < Self.minimumKeyLength {
            throw PageTokenKeyError(
                message:
                    "a page token key must be at least \(Self.minimumKeyLength) bytes (for example `openssl rand -base64 32`)"
            )
        }
        self.init(signing: Array(current.utf8), verifying: ([current] + previous).map { Array($0.utf8) }, clock: clock)
    }

    /// A random key of this process alone: tokens do not survive a restart or reach another instance.
    public static func random(clock: @escaping @Sendable () -> Int64 = PageTokenKeys.now) -> PageTokenKeys {
        let key = SecretHashing.randomBytes(32)
        return PageTokenKeys(signing: key, verifying: [key], clock: clock)
    }

    private init(signing: [UInt8], verifying: [[UInt8]], clock: @escaping @Sendable () -> Int64) {
        self.signing = signing
        self.verifying = verifying
        self.clock = clock
    }

    /// Milliseconds since 1970, the default clock.
    @Sendable public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// `payload` with its expiry, signed for `scope`: `payload.expiry.mac`, each part base64url.
    func seal(_ payload: [UInt8], scope: [UInt8]) -> String {
        let expiry = String(clock() + Self.lifetime)
        let mac = SecretHashing.hmacSHA256(key: signing, message: Self.signed(payload, expiry: expiry, scope: scope))
        return [UnpaddedBase64.encode(payload, urlSafe: true), expiry, UnpaddedBase64.encode(mac, urlSafe: true)]
            .joined(separator: ".")
    }

    /// The payload of a token sealed for `scope`, once its signature and expiry hold.
    func open(_ token: String, scope: [UInt8]) throws(ListPagingError) -> [UInt8] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = UnpaddedBase64.decode(String(parts[0])), let expiry = Int64(parts[1]),
            let mac = UnpaddedBase64.decode(String(parts[2]))
        else { throw .malformedToken }
        let signed = Self.signed(payload, expiry: String(parts[1]), scope: scope)
        guard
            verifying.contains(where: {
                SecretHashing.constantTimeEqual(SecretHashing.hmacSHA256(key: $0, message: signed), Array(mac))
            })
        else {
            throw .foreignToken
        }
        guard expiry > clock() else { throw .expiredToken }
        return payload
    }

    /// What the signature covers: a version, the scope, the expiry and the payload, each length-prefixed.
    private static func signed(_ payload: [UInt8], expiry: String, scope: [UInt8]) -> [UInt8] {
        var message = Array("portal-page-token-v1".utf8)
        for part in [scope, Array(expiry.utf8), payload] {
            withUnsafeBytes(of: UInt32(part.count).bigEndian) { message.append(contentsOf: $0) }
            message.append(contentsOf: part)
        }
        return message
    }
}

/// A page token key that cannot be used, from configuration.
public struct PageTokenKeyError: Error, CustomStringConvertible {
    /// What is wrong with it.
    public let message: String
    /// The message.
    public var description: String { message }
}

/// What a page token is bound to: the signing keys, the list and the request's filters and order.
public struct PageTokenScope: Sendable {
    let keys: PageTokenKeys
    let binding: [UInt8]

    /// A scope for `list` (e.g. `activations`) and the serialized request that names the
    /// organization, filters and order, with its page token and page size cleared, so pages of one
    /// query share it.
    public init(_ keys: PageTokenKeys, list: String, request: [UInt8]) {
        self.keys = keys
        binding = Array(list.utf8) + [0] + request
    }
}
