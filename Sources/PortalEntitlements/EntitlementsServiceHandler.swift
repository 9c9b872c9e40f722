import Foundation
import PortalAPI
import PortalAuditOutbox
import PortalCSV
import PortalRPC
import PortalStorage
import PortalStorageRPC
import PortalTime

/// `portal.entitlements.v1.EntitlementsService`: validates every request and answers from the store.
public final class EntitlementsServiceHandler: Portal_Entitlements_V1_EntitlementsService {
    private let store: EntitlementsStore
    private let clock: any ServiceClock
    private let pageTokens: PageTokenKeys

    init(store: EntitlementsStore, clock: any ServiceClock, pageTokens: PageTokenKeys) {
        self.store = store
        self.clock = clock
        self.pageTokens = pageTokens
    }

    // MARK: Catalog and transfers

    public func upsertProduct(
        request: Portal_Entitlements_V1_UpsertProductRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_UpsertProductResponse {
        guard let product = request.product else { throw RPCError.invalidArgument(field: "product", "is required") }
        let record = ProductRecord(
            id: try Self.required(product.productID, field: "product.product_id"),
            name: try Self.text(product.name, field: "product.name"),
            licenseType: try Self.text(product.licenseType, field: "product.license_type"),
            description: try Self.text(
                product.productDescription, field: "product.product_description", required: false, limit: 2000),
            deploymentType: try Self.text(product.deploymentType, field: "product.deployment_type", required: false))
        let created = try await store.upsertProduct(record, now: clock.milliseconds())
        return .with {
            $0.product = record.api
            $0.created = created
        }
    }

    public func transferEntitlement(
        request: Portal_Entitlements_V1_TransferEntitlementRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_TransferEntitlementResponse {
        let entitlementID = try Self.required(request.entitlementID, field: "entitlement_id")
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        guard let orderDate = request.orderDate, orderDate.isValid else {
            throw RPCError.invalidArgument(field: "order_date", "is required")
        }
        if let expiration = request.expirationDate {
            guard expiration.isValid, expiration.milliseconds > orderDate.milliseconds else {
                throw RPCError.invalidArgument(field: "expiration_date", "must be a valid time after order_date")
            }
        }
        guard !request.lines.isEmpty else {
            throw RPCError.invalidArgument(field: "lines", "must hold at least one product")
        }
        var seen = Set<String>()
        let lines = try request.lines.enumerated().map { index, line -> (productID: String, quantity: Int64) in
            let productID = try Self.required(line.productID, field: "lines[\(index)].product_id")
            guard seen.insert(productID).inserted else {
                throw RPCError.invalidArgument(field: "lines[\(index)].product_id", "\(productID) appears twice")
            }
            guard line.quantity > 0, line.quantity <= 1_000_000_000 else {
                throw RPCError.invalidArgument(field: "lines[\(index)].quantity", "must be between 1 and 1,000,000,000")
            }
            return (productID, line.quantity)
        }
        let transfer = EntitlementsStore.Transfer(
            entitlementID: entitlementID, organizationID: organizationID,
            salesOrder: try Self.text(request.salesOrder, field: "sales_order"),
            poNumber: try Self.text(request.poNumber, field: "po_number", required: false),
            orderDate: orderDate.milliseconds, expirationDate: request.expirationDate?.milliseconds, lines: lines)
        let now = clock.milliseconds()
        let (entitlement, created) = try await store.transfer(transfer, actor: Self.actor(context), now: now)
        return .with {
            $0.entitlement = entitlement.api(now: now)
            $0.created = created
        }
    }

    // MARK: Licensing overview

    public func listProducts(
        request: Portal_Entitlements_V1_ListProductsRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_ListProductsResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let paging = try ListPaging(
            pageSize: request.pageSize, pageToken: request.pageToken, orderBy: request.orderBy,
            columns: EntitlementsStore.productColumns,
            defaultOrder: "product_name asc",
            scope: PageTokenScope(
                pageTokens, list: "products",
                request: request.updating {
                    $0.pageToken = ""
                    $0.pageSize = 0
                }))
        let page = try await store.listProducts(
            organizationID: organizationID, paging: paging, searchText: request.searchText)
        return .with {
            $0.products = page.products.map(\.api)
            $0.nextPageToken = page.nextPageToken
            $0.totalSize = page.totalSize
        }
    }

    public func getProduct(
        request: Portal_Entitlements_V1_GetProductRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_GetProductResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let productID = try Self.required(request.productID, field: "product_id")
        let (product, entitlements) = try await store.product(organizationID: organizationID, productID: productID)
        let now = clock.milliseconds()
        return .with {
            $0.product = product.api
            $0.entitlements = entitlements.map { entitlement, line in
                .with {
                    $0.entitlementID = entitlement.id
                    $0.orderDate = Google_Protobuf_Timestamp(milliseconds: entitlement.orderDate)
                    $0.salesOrder = entitlement.salesOrder
                    $0.poNumber = entitlement.poNumber
                    $0.availableLicenses = line.available
                    $0.activatedLicenses = line.activated
                    $0.unactivatedLicenses = line.available - line.activated
                    $0.status = entitlement.status(now: now)
                    $0.expirationDate = entitlement.expirationDate.map(Google_Protobuf_Timestamp.init(milliseconds:))
                }
            }
        }
    }

    public func listEntitlements(
        request: Portal_Entitlements_V1_ListEntitlementsRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_ListEntitlementsResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let paging = try ListPaging(
            pageSize: request.pageSize, pageToken: request.pageToken, orderBy: request.orderBy,
            columns: EntitlementsStore.entitlementColumns,
            defaultOrder: "order_date desc",
            scope: PageTokenScope(
                pageTokens, list: "entitlements",
                request: request.updating {
                    $0.pageToken = ""
                    $0.pageSize = 0
                }))
        var filter = EntitlementsStore.EntitlementFilter()
        (filter.orderDateStart, filter.orderDateEnd) = try Self.range(
            request.orderDateStart, request.orderDateEnd, field: "order_date")
        (filter.expirationStart, filter.expirationEnd) = try Self.range(
            request.expirationDateStart, request.expirationDateEnd, field: "expiration_date")
        if case .unrecognized(let value) = request.searchField {
            throw RPCError.invalidArgument(field: "search_field", "unknown value \(value)")
        }
        filter.searchField = request.searchField
        filter.searchText = request.searchText
        let now = clock.milliseconds()
        let page = try await store.listEntitlements(
            organizationID: organizationID, paging: paging, filter: filter, now: now)
        return .with {
            $0.entitlements = page.entitlements.map { $0.api(now: now) }
            $0.nextPageToken = page.nextPageToken
            $0.totalSize = page.totalSize
        }
    }

    public func getEntitlement(
        request: Portal_Entitlements_V1_GetEntitlementRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_GetEntitlementResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        let entitlementID = try Self.required(request.entitlementID, field: "entitlement_id")
        let entitlement = try await store.entitlement(id: entitlementID, organizationID: organizationID)
        return .with { $0.entitlement = entitlement.api(now: clock.milliseconds()) }
    }

    // MARK: Activations

    public func activate(
        request: Portal_Entitlements_V1_ActivateRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_ActivateResponse {
        guard request.quantity >= 1 else { throw RPCError.invalidArgument(field: "quantity", "must be at least 1") }
        let activation = EntitlementsStore.ActivationRequest(
            organizationID: try Self.required(request.organizationID, field: "organization_id"),
            entitlementID: try Self.required(request.entitlementID, field: "entitlement_id"),
            productID: try Self.required(request.productID, field: "product_id"), quantity: request.quantity,
            projectName: try Self.text(request.projectName, field: "project_name"),
            projectManager: try Self.text(request.projectManager, field: "project_manager"),
            serialNumber: try Self.text(request.serialNumber, field: "serial_number", required: false),
            idempotencyKey: try Self.required(request.idempotencyKey, field: "idempotency_key"))
        let record = try await store.activate(activation, actor: Self.actor(context), now: clock.milliseconds())
        return .with { $0.activation = record.api }
    }

    public func listActivations(
        request: Portal_Entitlements_V1_ListActivationsRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_ListActivationsResponse {
        let filter = try Self.activationFilter(
            organizationID: request.organizationID, start: request.activationDateStart, end: request.activationDateEnd,
            productIDs: request.productIds, searchText: request.searchText)
        let paging = try ListPaging(
            pageSize: request.pageSize, pageToken: request.pageToken, orderBy: request.orderBy,
            columns: EntitlementsStore.activationColumns,
            defaultOrder: "activation_date desc",
            scope: PageTokenScope(
                pageTokens, list: "activations",
                request: request.updating {
                    $0.pageToken = ""
                    $0.pageSize = 0
                }))
        let page = try await store.listActivations(filter, paging: paging)
        return .with {
            $0.activations = page.activations.map(\.api)
            $0.nextPageToken = page.nextPageToken
            $0.totalSize = page.totalSize
        }
    }

    public func exportActivationsCsv(
        request: Portal_Entitlements_V1_ExportActivationsCsvRequest,
        responses: ResponseWriter<Portal_Entitlements_V1_ExportActivationsCsvResponse>, context: ServerContext
    ) async throws {
        let filter = try Self.activationFilter(
            organizationID: request.organizationID, start: request.activationDateStart, end: request.activationDateEnd,
            productIDs: request.productIds, searchText: request.searchText)
        guard let timeFormat = PortalTimeFormat(timeZoneIdentifier: request.timeZone) else {
            throw RPCError.invalidArgument(
                field: "time_zone", "\(RPCError.quote(request.timeZone)) is not an IANA time zone")
        }
        let scope = PageTokenScope(pageTokens, list: "activations export", request: request)
        let paging = { (token: String) in
            try ListPaging(
                pageSize: Int32(Self.exportStep), pageToken: token, orderBy: request.orderBy,
                columns: EntitlementsStore.activationColumns,
                defaultOrder: "activation_date desc", maxPageSize: Self.exportStep, scope: scope)
        }
        let export = CSVExport<ExportedActivation>(
            header: [
                "Activation Date", "Product Name", "Quantity", "Project Name", "Project Manager", "Activated By",
                "Entitlement ID", "Serial Number",
            ],
            chunkBytes: Self.chunkBytes,
            format: { activation in
                [
                    timeFormat.format(milliseconds: activation.activatedAt), activation.productName,
                    String(activation.quantity), activation.projectName, activation.projectManager,
                    activation.activatedBy, activation.entitlementID, activation.serialNumber,
                ]
            },
            send: { bytes in try await responses.write(.with { $0.chunk = bytes }) })
        try await store.exportActivations(filter, paging: try paging(""), following: paging) { batch in
            try context.checkLive()
            try await export.append(batch)
        }
        try await export.finish()
    }

    /// Rows an export reads at a time.
    static let exportStep = 2000
    /// Bytes of CSV per streamed message.
    static let chunkBytes = 64 << 10

    public func getSummary(
        request: Portal_Entitlements_V1_GetSummaryRequest, context: ServerContext
    ) async throws -> Portal_Entitlements_V1_GetSummaryResponse {
        let organizationID = try Self.required(request.organizationID, field: "organization_id")
        guard (0...100).contains(request.recentActivationsLimit) else {
            throw RPCError.invalidArgument(field: "recent_activations_limit", "must be between 0 and 100")
        }
        let totals = try await store.totals(organizationID: organizationID)
        let recent =
            request.recentActivationsLimit == 0
            ? []
            : try await store.recentActivations(
                organizationID: organizationID, limit: Int(request.recentActivationsLimit))
        return .with {
            $0.availableLicenses = totals.available
            $0.activatedLicenses = totals.activated
            $0.unactivatedLicenses = totals.available - totals.activated
            $0.recentActivations = recent.map(\.api)
        }
    }

    // MARK: Validation

    static func required(_ value: String, field: String) throws -> String {
        guard !value.isEmpty else { throw RPCError.invalidArgument(field: field, "is required") }
        guard value.utf8.count <= 128 else { throw RPCError.invalidArgument(field: field, "must be at most 128 bytes") }
        return value
    }

    static func text(_ value: String, field: String, required: Bool = true, limit: Int = 200) throws -> String {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if required, trimmed.isEmpty { throw RPCError.invalidArgument(field: field, "is required") }
        guard trimmed.count <= limit else {
            throw RPCError.invalidArgument(field: field, "must be at most \(limit) characters")
        }
        return trimmed
    }

    static func range(
        _ start: Google_Protobuf_Timestamp?, _ end: Google_Protobuf_Timestamp?, field: String
    ) throws -> (Int64?, Int64?) {
        if let start, !start.isValid { throw RPCError.invalidArgument(field: "\(field)_start", "is not a valid time") }
        if let end, !end.isValid { throw RPCError.invalidArgument(field: "\(field)_end", "is not a valid time") }
        if let start, let end, end.milliseconds < start.milliseconds {
            throw RPCError.invalidArgument(
                field: "\(field)_end", "must not be before \(field)_start (equal bounds select nothing)")
        }
        return (start?.milliseconds, end?.milliseconds)
    }

    static func activationFilter(
        organizationID: String, start: Google_Protobuf_Timestamp?, end: Google_Protobuf_Timestamp?,
        productIDs: [String], searchText: String
    ) throws -> EntitlementsStore.ActivationFilter {
        var filter = EntitlementsStore.ActivationFilter(
            organizationID: try required(organizationID, field: "organization_id"))
        (filter.start, filter.end) = try range(start, end, field: "activation_date")
        filter.productIDs = productIDs
        guard searchText.count <= 200 else {
            throw RPCError.invalidArgument(field: "search_text", "must be at most 200 characters")
        }
        filter.searchText = searchText
        return filter
    }

    /// The acting member from the gateway's metadata, or "system" for internal callers.
    static func actor(_ context: ServerContext) -> AuditOutbox.Actor {
        guard let memberID = context.requestMetadata.firstString(forKey: PrincipalMetadata.memberID), !memberID.isEmpty
        else { return .system }
        return AuditOutbox.Actor(
            memberID: memberID,
            displayName: context.requestMetadata.firstString(forKey: PrincipalMetadata.displayName) ?? memberID)
    }
}
