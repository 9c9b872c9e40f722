import Foundation

/// An invite message waiting in the outbox for the mailer: where it goes and the secret it carries.
///
/// The secret is only in the outbox until the mail is handed over; the mailer then erases the payload.
struct InviteMail: Codable, Sendable {
    /// The outbox topic of invite mail.
    static let topic = "mail"

    let to: String
    let organizationID: String
    let organizationName: String
    let role: String
    let invitedBy: String
    let secret: String
    let expiresAt: Int64

    /// The message as RFC 5322 text (CRLF line endings).
    func rfc5322(from sender: String, messageID: String, acceptLink: InviteLinkTemplate) -> String {
        let link = acceptLink.link(secret: secret)
        return PortalMessage.rfc5322(
            from: sender, to: to, subject: "You are invited to \(organizationName) on the End Customer Portal",
            messageID: messageID, organizationID: organizationID,
            bodyLines: [
                "\(invitedBy == "system" ? "You have" : "\(invitedBy) has") invited you to join \(organizationName) as \(role).",
                "",
                "Accept the invite: \(link)",
                "Invite code: \(secret)",
                "",
                "The invite works until \(Self.format(milliseconds: expiresAt)) UTC.",
            ])
    }

    private static func format(milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
