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
        let lines = [
            "From: \(sender)",
            "To: \(to)",
            "Subject: You are invited to \(organizationName) on the End Customer Portal",
            "Message-ID: <\(messageID)@end-customer-portal>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "X-Portal-Organization: \(organizationID)",
            "",
            "\(invitedBy == "system" ? "You have" : "\(invitedBy) has") invited you to join \(organizationName) as \(role).",
            "",
            "Accept the invite: \(link)",
            "Invite code: \(secret)",
            "",
            "The invite works until \(Self.format(milliseconds: expiresAt)) UTC.",
        ]
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    private static func format(milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
