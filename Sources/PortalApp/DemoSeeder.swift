import Foundation
import Logging
import PortalAPI
import PortalHTTP2
import PortalRPC
import ServiceLifecycle

/// Fills a fresh `portal dev` installation with a realistic demo organization through the services'
/// own RPCs (so every change is audited as in production), then prints how to sign in.
///
/// The organization has a dozen products, entitlements (one expired, one perpetual), activations,
/// Admins and a Viewer who accepted their invites (secrets read from the mail spool, as a person
/// would read their mail), and pending invites. A second, smaller organization has Ada as a Viewer,
/// so signing in as her shows the choice of organization. A data directory seeded once is never
/// seeded again.
public struct DemoSeeder: Service {
    /// The demo members' password.
    public static let password = "portal-demo-2026"

    private let dataDirectory: String
    private let host: String
    private let portBase: Int
    private let tls: ServiceTLS?
    private let webURL: String?
    private let logger: Logger

    /// A seeder for the services `portal dev` runs on `host` from `portBase` with data under
    /// `dataDirectory`; with `tls` it calls them over TLS presenting that certificate. `webURL`, the
    /// web portal's address, is printed last, with the sign-ins a person uses there.
    public init(
        dataDirectory: String, host: String, portBase: Int = PortalServiceKind.gateway.defaultPort,
        tls: ServiceTLS? = nil,
        webURL: String? = nil, logger: Logger
    ) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.portBase = portBase
        self.tls = tls
        self.webURL = webURL
        self.logger = logger
    }

    private var markerPath: String { (dataDirectory as NSString).appendingPathComponent("demo-organization.txt") }

    /// Seeds (once), prints the sign-in instructions, then waits for shutdown.
    public func run() async throws {
        do {
            let organizationID: String
            if let saved = try? String(contentsOfFile: markerPath, encoding: .utf8) {
                organizationID = saved.trimmingCharacters(in: .whitespacesAndNewlines)
            } else {
                organizationID = try await seed()
                try organizationID.write(toFile: markerPath, atomically: true, encoding: .utf8)
            }
            FileHandle.standardOutput.write(Data(instructions(organizationID: organizationID).utf8))
        } catch {
            logger.error(
                "could not seed the demo organization; the services run without it (remove the data directory to seed afresh)",
                metadata: ["error": "\(error)", "data_dir": "\(dataDirectory)"])
        }
        try? await gracefulShutdown()
    }

    /// How to sign in, ending with what a person types into the web portal in a browser.
    func instructions(organizationID: String) -> String {
        let gateway = portBase == PortalServiceKind.gateway.defaultPort ? "" : " --gateway \(host):\(portBase)"
        var text = """

            End Customer Portal is running: gateway \(host):\(PortalServiceKind.gateway.port(base: portBase)).

            Demo organization \(organizationID) (Northwind Robotics). Sign in from the command line as a Viewer,
            or as Ada, an Admin here and a Viewer of \(Self.secondOrganizationName), who chooses between the two:

              portalctl\(gateway) login --email grace@northwind.example --password \(Self.password)
              portalctl\(gateway) login --email ada@northwind.example --password \(Self.password)
              portalctl dashboard

            """
        if let webURL {
            text += """

                The portal: \(webURL)
                Sign in there with the password \(Self.password) and one of these emails:

                  grace@northwind.example   a Viewer of Northwind Robotics
                  ada@northwind.example     an Admin of Northwind Robotics and a Viewer of \(Self.secondOrganizationName): chooses one
                  lin@tailspin.example      the Admin of \(Self.secondOrganizationName)

                """
        }
        return text
    }

    // MARK: Seeding

    private struct Backends {
        let identity: Portal_Identity_V1_IdentityClient
        let entitlements: Portal_Entitlements_V1_EntitlementsClient
    }

    private func seed() async throws -> String {
        let clientTLS = try tls?.clientSource(logger: logger)
        let identityChannel = try PortalRuntime.channel(
            to: "\(host):\(PortalServiceKind.identity.port(base: portBase))", flag: "identity", tls: clientTLS)
        let entitlementsChannel = try PortalRuntime.channel(
            to: "\(host):\(PortalServiceKind.entitlements.port(base: portBase))", flag: "entitlements", tls: clientTLS)
        defer {
            Task {
                await identityChannel.close()
                await entitlementsChannel.close()
            }
        }
        let backends = Backends(
            identity: Portal_Identity_V1_IdentityClient(channel: identityChannel),
            entitlements: Portal_Entitlements_V1_EntitlementsClient(channel: entitlementsChannel))
        let organization = try await whenServing {
            try await backends.identity.createOrganization(
                .with {
                    $0.name = "Northwind Robotics"
                    $0.firstAdminEmail = "ada@northwind.example"
                    $0.idempotencyKey = "demo-organization"
                })
        }
        let organizationID = organization.organization!.organizationID
        let ada = try await accept("ada@northwind.example", "Ada", "Lovelace", organizationID: organizationID, backends)
        let asAda = PrincipalMetadata.metadata(memberID: ada.memberID, displayName: "Ada Lovelace")
        for (email, role, first, last) in [
            ("grace@northwind.example", Portal_Identity_V1_Role.viewer, "Grace", "Hopper"),
            ("katherine@northwind.example", .admin, "Katherine", "Johnson"),
            ("margaret@northwind.example", .viewer, "Margaret", "Hamilton"),
        ] {
            try await invite(email, role: role, organizationID: organizationID, as: asAda, backends)
            _ = try await accept(email, first, last, organizationID: organizationID, backends)
        }
        try await invite(
            "dorothy@northwind.example", role: .viewer, organizationID: organizationID, as: asAda, backends)
        try await invite("mary@northwind.example", role: .admin, organizationID: organizationID, as: asAda, backends)

        for product in Self.products {
            _ = try await backends.entitlements.upsertProduct(.with { $0.product = product })
        }
        let day: Int64 = 86_400_000
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let entitlements: [(String, String, Int64, Int64?, [(String, Int64)])] = [
            (
                "ENT-240117", "QSO-1041187", now - 400 * day, now + 330 * day,
                [("QSC-CORE-110", 40), ("QSC-VISION-4K", 25), ("QSC-SCRIPT", 60)]
            ),
            ("ENT-240502", "QSO-1043920", now - 240 * day, nil, [("QSC-ATLAS", 100), ("QSC-ORBIT", 50)]),
            (
                "ENT-240811", "QSO-1046305", now - 120 * day, now + 610 * day,
                [("QSC-PULSE", 30), ("QSC-FORGE", 20), ("QSC-HARBOR", 15)]
            ),
            ("ENT-230309", "QSO-1032277", now - 700 * day, now - 30 * day, [("QSC-CORE-110", 10), ("QSC-BEACON", 12)]),
            (
                "ENT-241020", "QSO-1048812", now - 40 * day, now + 700 * day,
                [("QSC-SUMMIT", 200), ("QSC-QUARTZ", 35), ("QSC-MERIDIAN", 80)]
            ),
        ]
        for (id, salesOrder, ordered, expires, lines) in entitlements {
            _ = try await backends.entitlements.transferEntitlement(
                .with {
                    $0.entitlementID = id
                    $0.organizationID = organizationID
                    $0.salesOrder = salesOrder
                    $0.poNumber = "PO-NW-\(id.suffix(4))"
                    $0.orderDate = Google_Protobuf_Timestamp(milliseconds: ordered)
                    $0.expirationDate = expires.map(Google_Protobuf_Timestamp.init(milliseconds:))
                    $0.lines = lines.map { line in
                        .with {
                            $0.productID = line.0
                            $0.quantity = line.1
                        }
                    }
                })
        }
        let projects = [
            ("Harbor Control Room", "Grace Hopper"), ("Atrium AV Refresh", "Katherine Johnson"),
            ("Line 3 Vision QA", "Margaret Hamilton"),
        ]
        let activations: [(String, String, Int64)] = [
            ("ENT-240117", "QSC-CORE-110", 4), ("ENT-240117", "QSC-VISION-4K", 6), ("ENT-240502", "QSC-ATLAS", 25),
            ("ENT-240502", "QSC-ORBIT", 10),
            ("ENT-240811", "QSC-PULSE", 8), ("ENT-241020", "QSC-SUMMIT", 40), ("ENT-241020", "QSC-QUARTZ", 5),
            ("ENT-240117", "QSC-SCRIPT", 12),
            ("ENT-240811", "QSC-FORGE", 3), ("ENT-241020", "QSC-MERIDIAN", 16), ("ENT-240117", "QSC-CORE-110", 2),
            ("ENT-240502", "QSC-ATLAS", 15),
        ]
        for (index, (entitlementID, productID, quantity)) in activations.enumerated() {
            let (project, manager) = projects[index % projects.count]
            _ = try await backends.entitlements.activate(
                .with {
                    $0.organizationID = organizationID
                    $0.entitlementID = entitlementID
                    $0.productID = productID
                    $0.quantity = quantity
                    $0.projectName = project
                    $0.projectManager = manager
                    $0.serialNumber = index % 2 == 0 ? String(format: "NW-%05d", 31_000 + index * 37) : ""
                    $0.idempotencyKey = "demo-activation-\(index)"
                }, metadata: asAda)
        }
        try await seedSecondOrganization(backends)
        logger.info("seeded the demo organization", metadata: ["organization": "\(organizationID)"])
        return organizationID
    }

    /// The second organization's name.
    static let secondOrganizationName = "Tailspin Venues"

    /// A second organization, led by Lin, where Ada (with the same password) is a Viewer, holding
    /// one entitlement: Ada's sign-in offers both organizations.
    private func seedSecondOrganization(_ backends: Backends) async throws {
        let created = try await backends.identity.createOrganization(
            .with {
                $0.name = Self.secondOrganizationName
                $0.firstAdminEmail = "lin@tailspin.example"
                $0.idempotencyKey = "demo-organization-2"
            })
        let organizationID = created.organization!.organizationID
        let lin = try await accept("lin@tailspin.example", "Lin", "Chen", organizationID: organizationID, backends)
        let asLin = PrincipalMetadata.metadata(memberID: lin.memberID, displayName: "Lin Chen")
        try await invite("ada@northwind.example", role: .viewer, organizationID: organizationID, as: asLin, backends)
        _ = try await accept("ada@northwind.example", "Ada", "Lovelace", organizationID: organizationID, backends)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await backends.entitlements.transferEntitlement(
            .with {
                $0.entitlementID = "ENT-250114"
                $0.organizationID = organizationID
                $0.salesOrder = "QSO-1051420"
                $0.poNumber = "PO-TS-0114"
                $0.orderDate = Google_Protobuf_Timestamp(milliseconds: now - 20 * 86_400_000)
                $0.expirationDate = Google_Protobuf_Timestamp(milliseconds: now + 345 * 86_400_000)
                $0.lines = [
                    .with {
                        $0.productID = "QSC-VISION-4K"
                        $0.quantity = 12
                    },
                    .with {
                        $0.productID = "QSC-PULSE"
                        $0.quantity = 4
                    },
                ]
            })
    }

    /// Runs `body`, retrying while the services are still starting (up to 30 seconds).
    private func whenServing<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
        let giveUp = ContinuousClock.now + .seconds(30)
        while true {
            do {
                return try await body()
            } catch let error as RPCError where error.code == .unavailable && ContinuousClock.now < giveUp {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private func invite(
        _ email: String, role: Portal_Identity_V1_Role, organizationID: String, as actor: Metadata, _ backends: Backends
    ) async throws {
        _ = try await backends.identity.createInvite(
            .with {
                $0.organizationID = organizationID
                $0.email = email
                $0.role = role
            }, metadata: actor)
    }

    /// Accepts the invite to `organizationID` mailed to `email`, reading its secret from the mail spool.
    private func accept(
        _ email: String, _ firstName: String, _ lastName: String, organizationID: String, _ backends: Backends
    ) async throws -> Portal_Identity_V1_Member {
        let secret = try await inviteSecret(for: email, organizationID: organizationID)
        return try await backends.identity.acceptInvite(
            .with {
                $0.inviteSecret = secret
                $0.firstName = firstName
                $0.lastName = lastName
                $0.password = Self.password
            }
        ).member!
    }

    /// The invite code in the spooled mail to `email` from `organizationID`, waiting (up to 30 seconds) for the mailer.
    private func inviteSecret(for email: String, organizationID: String) async throws -> String {
        let spool = (dataDirectory as NSString).appendingPathComponent("mail-spool")
        let giveUp = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < giveUp {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? [] where name.hasSuffix(".eml")
            {
                guard
                    let text = try? String(
                        contentsOfFile: (spool as NSString).appendingPathComponent(name), encoding: .utf8),
                    text.contains("To: \(email)"), text.contains("X-Portal-Organization: \(organizationID)")
                else { continue }
                if let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("Invite code: ") }) {
                    return String(line.dropFirst("Invite code: ".count))
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RPCError(.deadlineExceeded, "no invite mail to \(email) arrived in the spool")
    }

    /// The demo catalog.
    static let products: [Portal_Entitlements_V1_Product] = [
        ("QSC-CORE-110", "Nexus Core 110", "Perpetual", "Processing core license for one room", "On-premises"),
        ("QSC-VISION-4K", "Vision Edge 4K", "Subscription", "Camera analytics per 4K stream", "Edge"),
        ("QSC-SCRIPT", "Script Engine", "Subscription", "Control scripting runtime per core", "On-premises"),
        ("QSC-ATLAS", "Atlas Cloud Seats", "Subscription", "Cloud management seats", "Cloud"),
        ("QSC-ORBIT", "Orbit Sync", "Subscription", "Configuration sync between sites", "Cloud"),
        ("QSC-PULSE", "Pulse Analytics", "Subscription", "Usage and health analytics per site", "Cloud"),
        ("QSC-FORGE", "Forge Build Tools", "Perpetual", "Design and deployment tools per engineer", "Desktop"),
        ("QSC-HARBOR", "Harbor Storage", "Subscription", "Recording storage per terabyte", "Cloud"),
        ("QSC-BEACON", "Beacon Alerts", "Subscription", "Alerting for device faults", "Cloud"),
        ("QSC-SUMMIT", "Summit Identity", "Subscription", "Single sign-on for operators", "Cloud"),
        ("QSC-QUARTZ", "Quartz Reports", "Perpetual", "Scheduled compliance reports", "On-premises"),
        ("QSC-MERIDIAN", "Meridian Mesh", "Subscription", "Secure device mesh per node", "Edge"),
    ].map { id, name, licenseType, description, deployment in
        .with {
            $0.productID = id
            $0.name = name
            $0.licenseType = licenseType
            $0.productDescription = description
            $0.deploymentType = deployment
        }
    }
}
