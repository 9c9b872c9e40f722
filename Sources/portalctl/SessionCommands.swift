import ArgumentParser
import Foundation
import PortalClient

/// Reads a password from `--password`, `PORTAL_PASSWORD`, or the terminal without echo.
func readPassword(_ given: String?, prompt: String) throws -> String {
    if let given { return given }
    if let environment = ProcessInfo.processInfo.environment["PORTAL_PASSWORD"] { return environment }
    guard let typed = getpass(prompt).map({ String(cString: $0) }), !typed.isEmpty else {
        throw ValidationError("--password: no password given")
    }
    return typed
}

/// Saves the session token where later commands find it, readable by the owner only from the first
/// byte on (written to a new 0600 file, then renamed into place).
func saveSession(_ token: String, to path: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    if !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    let temporary = path + ".\(getpid()).new"
    let descriptor = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600)
    guard descriptor >= 0 else { throw ValidationError("--session: cannot write \(path): \(String(cString: strerror(errno)))") }
    let file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    do {
        try file.write(contentsOf: Data(token.utf8))
        try file.synchronize()
        try file.close()
        guard rename(temporary, path) == 0 else { throw ValidationError("--session: cannot write \(path): \(String(cString: strerror(errno)))") }
    } catch {
        unlink(temporary)
        throw error
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign in and keep the session for later commands.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Your organization's id.") var org: String
    @Option(help: "Your email.") var email: String
    @Option(help: "Your password (or env PORTAL_PASSWORD; asked for when absent).") var password: String?

    func run() async throws {
        let password = try readPassword(password, prompt: "Password: ")
        try await global.run { client in
            let session = try await client.login(organizationID: org, email: email, password: password, options: global.callOptions)
            try saveSession(session.sessionToken, to: global.sessionFile)
            if global.json {
                try Output.json(["principal": JSONRecords.principal(session.principal), "expires_at": Output.iso(session.expiresAt)])
            } else {
                let principal = session.principal ?? .init()
                print("Signed in as \(principal.displayName) (\(JSONRecords.role(principal.role).capitalized)) until \(Output.time(session.expiresAt)) UTC.")
            }
        }
    }
}

struct AcceptInvite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "accept-invite", abstract: "Accept an invite with the code from its mail, and sign in.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The invite code from the mail.") var code: String
    @Option(help: "Your first name.") var firstName: String
    @Option(help: "Your last name.") var lastName: String
    @Option(help: "A password of at least 12 characters (or env PORTAL_PASSWORD; asked for when absent).") var password: String?

    func run() async throws {
        let password = try readPassword(password, prompt: "Choose a password: ")
        try await global.run { client in
            let accepted = try await client.portal.acceptInvite(.with {
                $0.inviteSecret = code
                $0.firstName = firstName
                $0.lastName = lastName
                $0.password = password
            }, options: global.callOptions)
            try saveSession(accepted.sessionToken, to: global.sessionFile)
            if global.json {
                try Output.json(["member": JSONRecords.member(accepted.member ?? .init()), "expires_at": Output.iso(accepted.expiresAt)])
            } else {
                print("Welcome, \(accepted.member?.displayName ?? firstName). You are signed in.")
            }
        }
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End the session.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.run { client in
            do {
                try await client.logout(options: global.callOptions)
            } catch let error as RPCError where error.code == .unauthenticated {
                // The session had already ended: nothing left to end but the saved token.
            }
            try? FileManager.default.removeItem(atPath: global.sessionFile)
            if !global.json { print("Signed out.") }
        }
    }
}

struct WhoAmI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show who you are signed in as.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.run { client in
            let me = try await client.portal.whoAmI(.init(), options: global.callOptions)
            let principal = me.principal ?? .init()
            if global.json {
                try Output.json(["principal": JSONRecords.principal(principal), "expires_at": Output.iso(me.expiresAt)])
            } else {
                Output.fields([
                    ("Name", principal.displayName), ("Email", principal.email), ("Role", JSONRecords.role(principal.role).capitalized),
                    ("Organization", principal.organizationID), ("Session ends", Output.time(me.expiresAt)),
                ])
            }
        }
    }
}

struct Dashboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "License totals, members, recent activations and audit events.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.run { client in
            let dashboard = try await client.portal.getDashboard(.init(), options: global.callOptions)
            if global.json {
                var object: [String: Any] = [
                    "available_licenses": dashboard.availableLicenses, "activated_licenses": dashboard.activatedLicenses,
                    "unactivated_licenses": dashboard.unactivatedLicenses,
                    "recent_activations": dashboard.recentActivations.map(JSONRecords.activation),
                    "recent_events": dashboard.recentEvents.map(JSONRecords.event),
                    "quick_actions": dashboard.quickActions.map { $0 == .inviteMember ? "INVITE_MEMBER" : "UNSPECIFIED" },
                ]
                if let members = dashboard.totalMembers { object["total_members"] = members }
                try Output.json(object)
                return
            }
            var figures = [
                ("Available licenses", "\(dashboard.availableLicenses)"), ("Activated licenses", "\(dashboard.activatedLicenses)"),
                ("Unactivated licenses", "\(dashboard.unactivatedLicenses)"),
            ]
            if let members = dashboard.totalMembers { figures.append(("Total members", "\(members)")) }
            Output.fields(figures)
            print("\nRecent activations")
            Output.table(["Product", "Quantity", "Activation date", "Activated by"], dashboard.recentActivations.map {
                [$0.productName, "\($0.quantity)", Output.time($0.activationDate), $0.activatedBy]
            })
            print("\nRecent audits & events")
            Output.table(["Date & time", "Message", "Type", "User"], dashboard.recentEvents.map {
                [Output.time($0.time), $0.message, JSONRecords.eventType($0.eventType).capitalized, $0.user]
            })
            if dashboard.quickActions.contains(.inviteMember) { print("\nInvite your team: portalctl invite EMAIL --role viewer|admin") }
        }
    }
}
