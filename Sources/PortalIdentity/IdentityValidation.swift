import Foundation
import PortalAPI
import PortalRPC

/// Field rules of the identity service; each failure is `INVALID_ARGUMENT` naming the field.
enum IdentityValidation {
    /// Shortest password accepted.
    static let minimumPasswordLength = 12

    /// A trimmed email of the form `local@domain.tld`, 3 to 254 characters, no spaces or control characters.
    static func email(_ value: String, field: String = "email") throws -> String {
        let email = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !email.isEmpty else { throw RPCError.invalidArgument(field: field, "is required") }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64,
            parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !parts[1].contains(".."),
            email.unicodeScalars.allSatisfy({
                $0.value > 0x20 && $0.value != 0x7F && $0 != "<" && $0 != ">" && $0 != "," && $0 != ";"
            })
        else {
            throw RPCError.invalidArgument(field: field, "\(RPCError.quote(value)) is not an email address")
        }
        return email
    }

    /// The key emails are compared by: lower-cased.
    static func emailKey(_ email: String) -> String { email.lowercased() }

    /// Empty (no phone) or E.164: `+` then 8 to 15 digits, the first not 0.
    static func phone(_ value: String, field: String = "phone") throws -> String {
        let phone = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !phone.isEmpty else { return "" }
        let digits = phone.dropFirst()
        guard phone.hasPrefix("+"), (8...15).contains(digits.count), digits.allSatisfy(\.isASCIIDigit),
            digits.first != "0"
        else {
            throw RPCError.invalidArgument(
                field: field, "\(RPCError.quote(value)) is not an E.164 phone number (for example +14155550100)")
        }
        return phone
    }

    /// A required name of at most 100 characters without control characters.
    static func name(_ value: String, field: String) throws -> String {
        let name = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty else { throw RPCError.invalidArgument(field: field, "is required") }
        guard name.count <= 100 else { throw RPCError.invalidArgument(field: field, "must be at most 100 characters") }
        guard name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw RPCError.invalidArgument(field: field, "must not contain control characters")
        }
        return name
    }

    /// A password of at least `minimumPasswordLength` characters and at most 1,024 bytes.
    static func password(_ value: String, field: String = "password") throws -> String {
        guard value.count >= minimumPasswordLength else {
            throw RPCError.invalidArgument(field: field, "must be at least \(minimumPasswordLength) characters")
        }
        guard value.utf8.count <= 1024 else {
            throw RPCError.invalidArgument(field: field, "must be at most 1024 bytes")
        }
        return value
    }

    /// A required id.
    static func id(_ value: String, field: String) throws -> String {
        guard !value.isEmpty else { throw RPCError.invalidArgument(field: field, "is required") }
        guard value.utf8.count <= 128 else { throw RPCError.invalidArgument(field: field, "must be at most 128 bytes") }
        return value
    }

    /// ADMIN or VIEWER.
    static func role(_ value: Portal_Identity_V1_Role, field: String = "role") throws -> MemberRole {
        switch value {
        case .admin: .admin
        case .viewer: .viewer
        default: throw RPCError.invalidArgument(field: field, "must be ROLE_ADMIN or ROLE_VIEWER")
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
