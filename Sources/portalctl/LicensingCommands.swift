import ArgumentParser
import Foundation
import PortalClient

struct Products: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Products your organization holds, with license counts.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var paging: PagingOptions
    @Option(help: "Search product name and license type.") var search: String = ""

    func run() async throws {
        try await global.run { client in
            let page = try await client.portal.listProducts(
                .with {
                    $0.pageSize = paging.pageSize
                    $0.pageToken = paging.pageToken
                    $0.orderBy = paging.sort
                    $0.searchText = search
                }, options: global.callOptions)
            if global.json {
                return try Output.json(
                    JSONRecords.page(
                        "products", page.products.map(JSONRecords.product), nextPageToken: page.nextPageToken,
                        totalSize: page.totalSize))
            }
            Output.table(
                ["Product ID", "Name", "License type", "Available", "Activated", "Unactivated"],
                page.products.map {
                    [
                        $0.product?.productID ?? "", $0.product?.name ?? "", $0.product?.licenseType ?? "",
                        "\($0.availableLicenses)",
                        "\($0.activatedLicenses)", "\($0.unactivatedLicenses)",
                    ]
                })
            Output.pageFooter(shown: page.products.count, total: page.totalSize, nextPageToken: page.nextPageToken)
        }
    }
}

struct Product: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One product and the entitlements that include it.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The product id (SKU).") var productID: String

    func run() async throws {
        try await global.run { client in
            let detail = try await client.portal.getProduct(
                .with { $0.productID = productID }, options: global.callOptions)
            let held = detail.product ?? .init()
            if global.json {
                var object = JSONRecords.product(held)
                object["entitlements"] = detail.entitlements.map { included in
                    [
                        "entitlement_id": included.entitlementID, "order_date": Output.iso(included.orderDate),
                        "sales_order": included.salesOrder,
                        "po_number": included.poNumber, "available_licenses": included.availableLicenses,
                        "activated_licenses": included.activatedLicenses,
                    ] as [String: Any]
                }
                return try Output.json(object)
            }
            let product = held.product ?? .init()
            Output.fields([
                ("Product", product.name), ("License type", product.licenseType),
                ("Description", product.productDescription),
                ("Available", "\(held.availableLicenses)"), ("Activated", "\(held.activatedLicenses)"),
                ("Unactivated", "\(held.unactivatedLicenses)"),
            ])
            print("\nIncluded in entitlements")
            Output.table(
                ["Entitlement", "Order date", "Sales order", "PO number", "Available", "Activated"],
                detail.entitlements.map {
                    [
                        $0.entitlementID, Output.day($0.orderDate), $0.salesOrder, $0.poNumber,
                        "\($0.availableLicenses)", "\($0.activatedLicenses)",
                    ]
                })
        }
    }
}

struct Entitlements: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Your organization's entitlements.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var paging: PagingOptions
    @Option(help: "Ordered on or after this date (2026-03-05).") var orderedFrom: String?
    @Option(help: "Ordered before this date.") var orderedTo: String?
    @Option(help: "Expiring on or after this date.") var expiresFrom: String?
    @Option(help: "Expiring before this date.") var expiresTo: String?
    @Option(help: "Search text.") var search: String = ""
    @Option(help: "Search only in: entitlement-id, sales-order or po-number.") var searchField: String?

    func run() async throws {
        let field: Portal_Entitlements_V1_EntitlementSearchField
        switch searchField {
        case nil: field = .unspecified
        case "entitlement-id": field = .entitlementID
        case "sales-order": field = .salesOrder
        case "po-number": field = .poNumber
        case let other?:
            throw ValidationError("--search-field: expected entitlement-id, sales-order or po-number, not \(other)")
        }
        let ranges = (
            try Output.parseDate(orderedFrom, option: "--ordered-from"),
            try Output.parseDate(orderedTo, option: "--ordered-to"),
            try Output.parseDate(expiresFrom, option: "--expires-from"),
            try Output.parseDate(expiresTo, option: "--expires-to")
        )
        try await global.run { client in
            let page = try await client.portal.listEntitlements(
                .with {
                    $0.pageSize = paging.pageSize
                    $0.pageToken = paging.pageToken
                    $0.orderBy = paging.sort
                    $0.orderDateStart = ranges.0
                    $0.orderDateEnd = ranges.1
                    $0.expirationDateStart = ranges.2
                    $0.expirationDateEnd = ranges.3
                    $0.searchField = field
                    $0.searchText = search
                }, options: global.callOptions)
            if global.json {
                return try Output.json(
                    JSONRecords.page(
                        "entitlements", page.entitlements.map(JSONRecords.entitlement),
                        nextPageToken: page.nextPageToken, totalSize: page.totalSize))
            }
            Output.table(
                [
                    "Entitlement", "Sales order", "Status", "Products", "Order date", "Expiration", "PO number",
                    "Available",
                ],
                page.entitlements.map {
                    [
                        $0.entitlementID, $0.salesOrder, $0.status == .expired ? "Expired" : "Active",
                        $0.lines.map(\.productName).joined(separator: ", "),
                        Output.day($0.orderDate), Output.day($0.expirationDate), $0.poNumber,
                        "\($0.totalAvailableLicenses)",
                    ]
                })
            Output.pageFooter(shown: page.entitlements.count, total: page.totalSize, nextPageToken: page.nextPageToken)
        }
    }
}

struct Entitlement: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One entitlement with a card per product.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The entitlement id.") var entitlementID: String

    func run() async throws {
        try await global.run { client in
            let entitlement =
                try await client.portal.getEntitlement(
                    .with { $0.entitlementID = entitlementID }, options: global.callOptions
                ).entitlement ?? .init()
            if global.json { return try Output.json(JSONRecords.entitlement(entitlement)) }
            Output.fields([
                ("Entitlement", entitlement.entitlementID),
                ("Status", entitlement.status == .expired ? "Expired" : "Active"),
                ("Order date", Output.day(entitlement.orderDate)),
                ("Expiration", Output.day(entitlement.expirationDate)),
                ("Sales order", entitlement.salesOrder), ("PO number", entitlement.poNumber),
                ("Total available", "\(entitlement.totalAvailableLicenses)"),
            ])
            print("\nLicenses")
            Output.table(
                ["Product ID", "Product", "Deployment", "Available", "Activated", "Unactivated"],
                entitlement.lines.map {
                    [
                        $0.productID, $0.productName, $0.deploymentType, "\($0.availableLicenses)",
                        "\($0.activatedLicenses)", "\($0.unactivatedLicenses)",
                    ]
                })
        }
    }
}

struct Activate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Activate licenses of a product from an entitlement (Admins).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The entitlement to take licenses from.") var entitlement: String
    @Option(help: "The product id.") var product: String
    @Option(help: "How many licenses.") var quantity: Int64 = 1
    @Option(help: "Project name.") var project: String
    @Option(help: "Project manager.") var manager: String
    @Option(help: "Device serial number.") var serial: String = ""
    @Option(
        help: "Idempotency key: repeating a command with the same key activates once (default: a new key, printed).")
    var key: String?

    func run() async throws {
        let key = key ?? UUID().uuidString
        try await global.run { client in
            let activation: Portal_Entitlements_V1_Activation
            do {
                activation =
                    try await client.portal.activate(
                        .with {
                            $0.entitlementID = entitlement
                            $0.productID = product
                            $0.quantity = quantity
                            $0.projectName = project
                            $0.projectManager = manager
                            $0.serialNumber = serial
                            $0.idempotencyKey = key
                        }, options: global.callOptions
                    ).activation ?? .init()
            } catch let error as RPCError
                where [.unavailable, .deadlineExceeded, .unknown, .internal, .cancelled].contains(error.code)
            {
                // The outcome is unknown: the activation may have been recorded.
                FileHandle.standardError.write(
                    Data("portalctl: retry with --key \(key) so the activation happens at most once\n".utf8))
                throw error
            }
            if global.json { return try Output.json(JSONRecords.activation(activation)) }
            print(
                "Activated \(activation.quantity) of \(activation.productName) for \(activation.projectName) (activation \(activation.activationID), key \(key))."
            )
        }
    }
}
