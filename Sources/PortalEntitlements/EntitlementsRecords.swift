import Foundation
import PortalAPI
import PortalStorage
import SQLKit

/// A catalog product.
struct ProductRecord: Sendable {
    let id: String
    let name: String
    let licenseType: String
    let description: String
    let deploymentType: String

    init(id: String, name: String, licenseType: String, description: String, deploymentType: String) {
        self.id = id
        self.name = name
        self.licenseType = licenseType
        self.description = description
        self.deploymentType = deploymentType
    }

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: String.self)
        name = try row.decode(column: "name", as: String.self)
        licenseType = try row.decode(column: "license_type", as: String.self)
        description = try row.decode(column: "description", as: String.self)
        deploymentType = try row.decode(column: "deployment_type", as: String.self)
    }

    var api: Portal_Entitlements_V1_Product {
        .with {
            $0.productID = id
            $0.name = name
            $0.licenseType = licenseType
            $0.productDescription = description
            $0.deploymentType = deploymentType
        }
    }
}

/// One product line of an entitlement, with the product's catalog fields.
struct EntitlementLineRecord: Sendable {
    let productID: String
    let productName: String
    let productDescription: String
    let deploymentType: String
    let licenseType: String
    let available: Int64
    let activated: Int64

    init(row: any SQLRow) throws {
        productID = try row.decode(column: "product_id", as: String.self)
        productName = try row.decode(column: "name", as: String.self)
        productDescription = try row.decode(column: "description", as: String.self)
        deploymentType = try row.decode(column: "deployment_type", as: String.self)
        licenseType = try row.decode(column: "license_type", as: String.self)
        available = try row.decode(column: "available", as: Int64.self)
        activated = try row.decode(column: "activated", as: Int64.self)
    }

    var api: Portal_Entitlements_V1_EntitlementLine {
        .with {
            $0.productID = productID
            $0.productName = productName
            $0.productDescription = productDescription
            $0.deploymentType = deploymentType
            $0.licenseType = licenseType
            $0.availableLicenses = available
            $0.activatedLicenses = activated
            $0.unactivatedLicenses = available - activated
        }
    }
}

/// An entitlement with its lines.
struct EntitlementRecord: Sendable {
    let id: String
    let organizationID: String
    let salesOrder: String
    let poNumber: String
    let orderDate: Int64
    let expirationDate: Int64?
    let transferredAt: Int64
    let lines: [EntitlementLineRecord]

    init(row: any SQLRow, lines: [EntitlementLineRecord]) throws {
        id = try row.decode(column: "id", as: String.self)
        organizationID = try row.decode(column: "org_id", as: String.self)
        salesOrder = try row.decode(column: "sales_order", as: String.self)
        poNumber = try row.decode(column: "po_number", as: String.self)
        orderDate = try row.decode(column: "order_date", as: Int64.self)
        expirationDate = try row.decode(column: "expiration_date", as: Int64?.self)
        transferredAt = try row.decode(column: "transferred_at", as: Int64.self)
        self.lines = lines
    }

    /// ACTIVE until the expiration date, EXPIRED from then on.
    func status(now: Int64) -> Portal_Entitlements_V1_EntitlementStatus {
        if let expirationDate, expirationDate <= now { return .expired }
        return .active
    }

    func api(now: Int64) -> Portal_Entitlements_V1_Entitlement {
        .with {
            $0.entitlementID = id
            $0.organizationID = organizationID
            $0.salesOrder = salesOrder
            $0.poNumber = poNumber
            $0.orderDate = Google_Protobuf_Timestamp(milliseconds: orderDate)
            $0.expirationDate = expirationDate.map(Google_Protobuf_Timestamp.init(milliseconds:))
            $0.status = status(now: now)
            $0.lines = lines.map(\.api)
            $0.totalAvailableLicenses = lines.reduce(0) { $0 + $1.available }
            $0.totalActivatedLicenses = lines.reduce(0) { $0 + $1.activated }
            $0.totalUnactivatedLicenses = lines.reduce(0) { $0 + $1.available - $1.activated }
            $0.transferredAt = Google_Protobuf_Timestamp(milliseconds: transferredAt)
        }
    }

    /// `2026-03-05`, for messages.
    static func day(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}

/// A recorded activation.
struct ActivationRecord: Sendable {
    let id: String
    let organizationID: String
    let entitlementID: String
    let productID: String
    let productName: String
    let quantity: Int64
    let projectName: String
    let projectManager: String
    let serialNumber: String
    let activatedBy: String
    let activatedByMemberID: String
    let activatedAt: Int64

    static let columns = """
        id, org_id, entitlement_id, product_id, product_name, quantity, project_name, project_manager, serial_number, activated_by, \
        activated_by_member_id, activated_at
        """

    /// The searchable columns as one lowercase text (the `search_doc` column), separated so that no
    /// match spans two of them.
    var searchDocument: String {
        [productName, projectName, projectManager, activatedBy, serialNumber, entitlementID].joined(separator: "\u{1}")
            .lowercased()
    }

    /// The columns, qualified for queries that join the search index.
    static let qualifiedColumns = qualified(columns, table: "activations")

    var api: Portal_Entitlements_V1_Activation {
        .with {
            $0.activationID = id
            $0.organizationID = organizationID
            $0.activationDate = Google_Protobuf_Timestamp(milliseconds: activatedAt)
            $0.productID = productID
            $0.productName = productName
            $0.quantity = quantity
            $0.projectName = projectName
            $0.projectManager = projectManager
            $0.activatedBy = activatedBy
            $0.activatedByMemberID = activatedByMemberID
            $0.entitlementID = entitlementID
            $0.serialNumber = serialNumber
        }
    }
}

extension ActivationRecord {
    /// Reads the row's columns directly where the engine allows (exports read a million rows).
    init(row: any SQLRow) throws {
        let row = SQLRowReader(row)
        self.init(
            id: try row.string("id"), organizationID: try row.string("org_id"),
            entitlementID: try row.string("entitlement_id"),
            productID: try row.string("product_id"), productName: try row.string("product_name"),
            quantity: try row.integer("quantity"),
            projectName: try row.string("project_name"), projectManager: try row.string("project_manager"),
            serialNumber: try row.string("serial_number"), activatedBy: try row.string("activated_by"),
            activatedByMemberID: try row.string("activated_by_member_id"), activatedAt: try row.integer("activated_at"))
    }
}

/// An activation as the CSV export shows it: only the columns it prints.
struct ExportedActivation: Sendable {
    let activatedAt: Int64
    let productName: String
    let quantity: Int64
    let projectName: String
    let projectManager: String
    let activatedBy: String
    let entitlementID: String
    let serialNumber: String

    static let columns = """
        activations.activated_at, activations.product_name, activations.quantity, activations.project_name, \
        activations.project_manager, activations.activated_by, activations.entitlement_id, activations.serial_number
        """

    init(_ activation: ActivationRecord) {
        activatedAt = activation.activatedAt
        productName = activation.productName
        quantity = activation.quantity
        projectName = activation.projectName
        projectManager = activation.projectManager
        activatedBy = activation.activatedBy
        entitlementID = activation.entitlementID
        serialNumber = activation.serialNumber
    }

    /// Reads a row of `columns`, by position (exports read a million rows).
    init(row: any SQLRow) throws {
        let row = SQLRowReader(row)
        activatedAt = try row.integer(at: 0)
        productName = try row.string(at: 1)
        quantity = try row.integer(at: 2)
        projectName = try row.string(at: 3)
        projectManager = try row.string(at: 4)
        activatedBy = try row.string(at: 5)
        entitlementID = try row.string(at: 6)
        serialNumber = try row.string(at: 7)
    }
}
