internal import Hummingbird

/// `GET /metrics`: the metrics exposition its host hands over (``MetricsExposition``).
struct MetricsController: Sendable {
    let exposition: MetricsExposition

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: exposition.contentType],
                body: .init(byteBuffer: ByteBuffer(bytes: exposition.render()))
            )
        }
    }
}
