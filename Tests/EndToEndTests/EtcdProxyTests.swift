import Testing
import TestSupport

/// The proxies against real etcd clusters (discovery, groups): one suite at a time, since each
/// starts clusters and proxies that would otherwise share two cores with the rest of the run.
@Suite(.serialized, .enabled(if: EtcdCluster.available, "etcd-server is not installed"))
struct EtcdProxyTests {}
