import AttestationService
import Metrics
import Prometheus

/// The CLI's metrics backend: `enclave serve attestation` bootstraps swift-metrics with Prometheus (once per process,
/// on first use) and hands the registry's text exposition to the server for `GET /metrics`. The libraries only
/// record through swift-metrics; choosing the backend is the executable's.
enum PrometheusMetrics {
    /// The exposition of the process's Prometheus registry; the first use bootstraps the metrics system.
    static let exposition: MetricsExposition = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return MetricsExposition(contentType: "text/plain; version=0.0.4") { registry.emitToBuffer() }
    }()
}
