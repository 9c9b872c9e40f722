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

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in with your email and password, and keep the session for later commands.",
        discussion: """
            When your email belongs to several organizations you choose one: from a list on a terminal, \
            or with --org ID (which also signs in to that organization directly, as before).
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The organization to sign in to (needed only to choose without being asked).") var org: String?
    @Option(help: "Your email.") var email: String
    @Option(help: "Your password (or env PORTAL_PASSWORD; asked for when absent).") var password: String?

    func run() async throws {
        let password = try readPassword(password, prompt: "Password: ")
        try await global.run { client in
            let session: Portal_Gateway_V1_LoginResponse
            if let org {
                session = try await client.login(
                    organizationID: org, email: email, password: password, options: global.callOptions)
            } else {
                let signIn = try await client.login(email: email, password: password, options: global.callOptions)
                if signIn.choiceToken.isEmpty {
                    session = signIn
                } else {
                    let chosen = try OrganizationPrompt.choose(from: signIn.organizationChoices, json: global.json)
                    session = try await client.login(
                        choiceToken: signIn.choiceToken, organizationID: chosen, options: global.callOptions)
                }
            }
            try global.save(sessionToken: session.sessionToken)
            if global.json {
                try Output.json([
                    "principal": JSONRecords.principal(session.principal), "expires_at": Output.iso(session.expiresAt),
                ])
            } else {
                let principal = session.principal ?? .init()
                print(
                    "Signed in as \(principal.displayName) (\(JSONRecords.role(principal.role).capitalized)) until \(Output.time(session.expiresAt)) UTC."
                )
            }
        }
    }
}

struct AcceptInvite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept-invite", abstract: "Accept an invite with the code from its mail, and sign in.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The invite code from the mail.") var code: String
    @Option(help: "Your first name.") var firstName: String
    @Option(help: "Your last name.") var lastName: String
    @Option(help: "A password of at least 12 characters (or env PORTAL_PASSWORD; asked for when absent).") var password:
        String?

    func run() async throws {
        let password = try readPassword(password, prompt: "Choose a password: ")
        try await global.run { client in
            let accepted = try await client.portal.acceptInvite(
                .with {
                    $0.inviteSecret = code
                    $0.firstName = firstName
                    $0.lastName = lastName
                    $0.password = password
                }, options: global.callOptions)
            try global.save(sessionToken: accepted.sessionToken)
            if global.json {
                try Output.json([
                    "member": JSONRecords.member(accepted.member ?? .init()),
                    "expires_at": Output.iso(accepted.expiresAt),
                ])
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
    static let configuration = CommandConfiguration(
        commandName: "whoami", abstract: "Show who you are signed in as, and your organizations.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.run { client in
            let me = try await client.portal.whoAmI(.init(), options: global.callOptions)
            let principal = me.principal ?? .init()
            if global.json {
                try Output.json([
                    "principal": JSONRecords.principal(principal), "expires_at": Output.iso(me.expiresAt),
                    "organizations": me.organizations.map(JSONRecords.membership),
                ])
            } else {
                Output.fields([
                    ("Name", principal.displayName), ("Email", principal.email),
                    ("Role", JSONRecords.role(principal.role).capitalized),
                    ("Organization", principal.organizationID), ("Session ends", Output.time(me.expiresAt)),
                ])
                print("\nYour organizations")
                Output.table(
                    ["", "Organization", "Name", "Role"],
                    me.organizations.map {
                        [
                            $0.current ? "*" : "", $0.organizationID, $0.organizationName,
                            JSONRecords.role($0.role).capitalized,
                        ]
                    })
                if me.organizations.count > 1 { print("\nSwitch with: portalctl switch ORGANIZATION") }
            }
        }
    }
}

struct SwitchOrganization: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switch", abstract: "Switch to another of your organizations (signs in there with your password).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The organization's id, as `portalctl whoami` lists it.") var organization: String
    @Option(help: "Your password (or env PORTAL_PASSWORD; asked for when absent).") var password: String?

    func run() async throws {
        try await global.run { client in
            let me = try await client.portal.whoAmI(.init(), options: global.callOptions)
            guard let target = me.organizations.first(where: { $0.organizationID == organization }) else {
                throw RPCError(
                    .notFound, "you are not a member of \(organization); `portalctl whoami` lists your organizations")
            }
            let email = me.principal?.email ?? ""
            if !target.current {
                let password = try readPassword(password, prompt: "Password for \(email): ")
                let previous = client.sessionToken
                let session = try await client.login(
                    organizationID: organization, email: email, password: password, options: global.callOptions)
                try global.save(sessionToken: session.sessionToken)
                // A session belongs to one organization: the one left behind is ended.
                if let previous {
                    _ = try? await client.portal.logout(
                        .init(), metadata: ["authorization": "Bearer \(previous)"], options: global.callOptions)
                }
            }
            if global.json {
                try Output.json(["organization": JSONRecords.membership(target), "switched": !target.current])
            } else {
                let role = JSONRecords.role(target.role).capitalized
                print(
                    target.current
                        ? "Already in \(target.organizationName) (\(role))."
                        : "Switched to \(target.organizationName) as \(role).")
            }
        }
    }
}

struct Dashboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "License totals, members, recent activations and audit events.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.run { client in
            let dashboard = try await client.portal.getDashboard(.init(), options: global.callOptions)
            if global.json {
                var object: [String: Any] = [
                    "available_licenses": dashboard.availableLicenses,
                    "activated_licenses": dashboard.activatedLicenses,
                    "unactivated_licenses": dashboard.unactivatedLicenses,
                    "recent_activations": dashboard.recentActivations.map(JSONRecords.activation),
                    "recent_events": dashboard.recentEvents.map(JSONRecords.event),
                    "quick_actions": dashboard.quickActions.map {
                        $0 == .inviteMember ? "INVITE_MEMBER" : "UNSPECIFIED"
                    },
                ]
                if let members = dashboard.totalMembers { object["total_members"] = members }
                try Output.json(object)
                return
            }
            var figures = [
                ("Available licenses", "\(dashboard.availableLicenses)"),
                ("Activated licenses", "\(dashboard.activatedLicenses)"),
                ("Unactivated licenses", "\(dashboard.unactivatedLicenses)"),
            ]
            if let members = dashboard.totalMembers { figures.append(("Total members", "\(members)")) }
            Output.fields(figures)
            print("\nRecent activations")
            Output.table(
                ["Product", "Quantity", "Activation date", "Activated by"],
                dashboard.recentActivations.map {
                    [$0.productName, "\($0.quantity)", Output.time($0.activationDate), $0.activatedBy]
                })
            print("\nRecent audits & events")
            Output.table(
                ["Date & time", "Message", "Type", "User"],
                dashboard.recentEvents.map {
                    [Output.time($0.time), $0.message, JSONRecords.eventType($0.eventType).capitalized, $0.user]
                })
            if dashboard.quickActions.contains(.inviteMember) {
                print("\nInvite your team: portalctl invite EMAIL --role viewer|admin")
            }
        }
    }
}
