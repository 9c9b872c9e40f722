/// The portal's plain-text mail as RFC 5322 text: one set of headers for invites and notices.
enum PortalMessage {
    /// The message from `sender` to `recipient` with `bodyLines`, CRLF line endings throughout.
    static func rfc5322(
        from sender: String, to recipient: String, subject: String, messageID: String, organizationID: String,
        bodyLines: [String]
    ) -> String {
        let header = [
            "From: \(sender)", "To: \(recipient)", "Subject: \(subject)",
            "Message-ID: <\(messageID)@end-customer-portal>",
            "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
            "X-Portal-Organization: \(organizationID)", "",
        ]
        return (header + bodyLines).joined(separator: "\r\n") + "\r\n"
    }
}
