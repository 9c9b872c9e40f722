import Foundation
import PortalRPC

/// The accept link in invite mail: an `http` or `https` URL in which `{secret}` stands for the
/// invite's secret, such as `https://portal.example.com/accept-invite?code={secret}`.
public struct InviteLinkTemplate: Sendable, Equatable {
    /// What the secret replaces.
    public static let placeholder = "{secret}"

    /// The template as given.
    public let template: String

    /// A template from `template`; `INVALID_ARGUMENT` unless it is an absolute `http` or `https` URL
    /// with a host that contains `{secret}`, in printable ASCII without spaces.
    public init(_ template: String) throws {
        guard template.contains(Self.placeholder) else {
            throw RPCError(
                .invalidArgument, "\(template) does not contain \(Self.placeholder), which the invite's secret replaces"
            )
        }
        // A space or line break would end the link in the mail's text, or start a line of its own.
        guard template.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw RPCError(
                .invalidArgument, "\(template) has spaces, line breaks or other characters a URL leaves percent-encoded"
            )
        }
        // Invite secrets are URL-safe, so any secret gives a URL exactly when a plain word does.
        guard let url = URLComponents(string: template.replacingOccurrences(of: Self.placeholder, with: "secret")),
            let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            throw RPCError(.invalidArgument, "\(template) is not an http:// or https:// URL with a host")
        }
        self.template = template
    }

    /// The link for an invite with `secret`.
    public func link(secret: String) -> String {
        template.replacingOccurrences(of: Self.placeholder, with: secret)
    }
}
