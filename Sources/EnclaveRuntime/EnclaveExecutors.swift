internal import Foundation
@_spi(ExperimentalCustomExecutors) import _Concurrency

/// The enclave's executors: its worker pool is Swift concurrency's global (default) executor and its main thread
/// is the main actor's, so no job ever reaches Dispatch's cooperative pool.
///
/// Why: Dispatch's pool runs a monitor that opens `/proc/self/task/TID/stat` whenever the pool has queued work; the
/// sandbox refuses the open and libdispatch then traps (SIGILL in `_dispatch_workq_monitor_pools`). Three ways out
/// were weighed:
/// - **Swift's executor hooks** (`swift_task_enqueueGlobal_hook` and its delay, deadline and main-executor variants,
///   looked up with `dlsym`): unversioned runtime globals outside any API, each entry point hooked separately (the
///   main-executor one included: `dispatch_main` hands the main queue to the same pool), and a future runtime that
///   adds an entry point silently routes it back to Dispatch. The attempt that hooked only the global entry points
///   still crashed.
/// - **A seccomp user-notification supervisor** answering that one open from the host: more host code on the
///   trusted path, the enclave's threads still on Dispatch's pool (whose thread count and monitor we do not
///   control), and one more way for a crashed or hostile host to stall the enclave.
/// - **A custom global executor** (this): the Swift 6.3 runtime's executor factory (`ExecutorFactory`,
///   `_createExecutors(factory:)`, the pitch "Custom Main and Global Executors"), through which the runtime itself
///   sends every global enqueue, every delayed enqueue (`Task.sleep`) and every main-actor job. One switch covers
///   every construct, the enclave owns every thread that runs its code, and a test sees it (no thread but the
///   runtime's own, `enclave-…`, across thousands of iterations of every construct). The factory is SPI in 6.3.1
///   and the compiler does not yet honour `typealias DefaultExecutorFactory` on the `@main` type, so the runtime
///   installs it itself, on the main thread, before any task other than `main`'s exists.
enum EnclaveExecutors {
    /// The global executor: the enclave's worker threads.
    static let workers = WorkerPool(count: min(64, max(4, ProcessInfo.processInfo.activeProcessorCount + 1)))
    /// The main actor's executor, drained by the process's main thread.
    static let main = EnclaveMainExecutor()

    struct Factory: ExecutorFactory {
        static var mainExecutor: any MainExecutor { EnclaveExecutors.main }
        static var defaultExecutor: any TaskExecutor { EnclaveExecutors.workers }
    }

    /// Make the enclave's executors Swift concurrency's global and main executors. Call once, on the main thread,
    /// before any task but `main`'s exists.
    static func install() {
        _createExecutors(factory: Factory.self)
    }
}
