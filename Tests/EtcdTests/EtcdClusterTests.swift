import Testing
import TestSupport

/// The tests against real etcd clusters. Their suites run one after the other: starting,
/// killing and waiting for members blocks a thread, and on a 2-core machine two suites doing
/// that at once would starve each other's timing checks (a hung endpoint's timeout, a fast
/// failover).
@Suite(.serialized, .enabled(if: EtcdCluster.available, "etcd-server is not installed; Scripts/test.sh installs it"))
struct EtcdClusterTests {}
