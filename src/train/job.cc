#include "train/job.h"

#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "glog/logging.h"
#include "net/host_address.h"
#include "train/coordinator.h"
#include "train/job_roles.h"
#include "train/local_control_plane.h"

namespace vrec::train {

StatusOr<nlohmann::json> TrainLocal(const TrainOptions& options_in, const std::atomic<bool>* stop) {
  TrainOptions options = options_in;
  if (!options.server.bind_network.empty()) {  // as a server rank of mpirun would bind
    StatusOr<std::string> own = net::AddressInNetworks(options.server.bind_network);
    if (!own.ok()) {
      return Status(own.status().code(),
                    absl::StrCat("--bind_network=", options.server.bind_network, ": ",
                                 own.status().message()));
    }
    options.server.bind_host = *own;
  }
  if (options.server.bind_host.empty()) options.server.bind_host = "inproc";
  // Workers are threads of this process: none freezes alone, and one that
  // hung could not be left behind.
  options.coordinator.failure_timeout_seconds = 0;
  const int num_servers = options.server.servers, num_workers = options.worker.workers;
  if (num_servers < 1 || num_workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--servers (", num_servers, ") and --workers (",
                                                   num_workers, ") must be at least 1"));
  }
  if (!options.model_dir.empty()) VREC_RETURN_IF_ERROR(MakeDirs(options.model_dir));
  VREC_ASSIGN_OR_RETURN(const ModelKind* kind, FindModelKind(options.model));
  VREC_ASSIGN_OR_RETURN(models::ModelSpec spec, JobSpec(*kind, options));
  VREC_ASSIGN_OR_RETURN(JobStart start, FindJobStart(options, &spec, num_workers));
  const std::optional<models::FoundCheckpoint>& resume = start.resume;
  VREC_ASSIGN_OR_RETURN(JobData data,
                        LoadJobData(*kind, options.data_dir, options.worker.stream, spec,
                                    /*full=*/true, options.worker.validation_users));
  if (resume) VREC_RETURN_IF_ERROR(CheckResumeData(resume->manifest, data.manifest, data.dir));
  VREC_ASSIGN_OR_RETURN(data.quantiles, JobQuantiles(start, std::move(data.quantiles)));
  spec.quantiles = data.quantiles;
  VREC_RETURN_IF_ERROR(kind->PrepareWorkers(spec, &data));
  LOG(INFO) << "dataset " << options.data_dir << ": " << data.corpus.ids.size() << " videos, "
            << data.train_records << " training examples";
  if (resume) {
    LOG(INFO) << "resuming from " << resume->dir << " ("
              << resume->manifest.model().examples_trained() << " examples trained)";
  }

  TemporarySpillCleanup cleanup(options);  // after the servers, whatever happens
  std::vector<ServerProcess> servers;
  net::ServerSet servers_at;
  VREC_ASSIGN_OR_RETURN(servers_at.keys, JobKeys(options.server));  // in memory only
  std::vector<ps::ServerStorage*> storage;
  for (int s = 0; s < num_servers; ++s) {
    VREC_ASSIGN_OR_RETURN(ServerProcess server,
                          StartServer(spec, options.server, servers_at.keys, SpillRoot(options), s,
                                      num_workers, &start, num_servers));
    servers_at.endpoints.push_back(server.endpoint);
    storage.push_back(server.storage.get());
    servers.push_back(std::move(server));
  }
  LocalControlPlane plane(num_workers, storage);
  std::vector<WorkerProgress> resumed(num_workers);
  if (resume) {
    for (const WorkerProgress& w : resume->manifest.workers()) {
      if (w.worker() >= 0 && w.worker() < num_workers) resumed[w.worker()] = w;
    }
  }
  std::vector<std::thread> threads;
  for (int w = 0; w < num_workers; ++w) {
    threads.emplace_back([&, w] {
      // Its status reaches the coordinator in its last report.
      RunWorkerRole(*kind, spec, data, options.worker, servers_at, w, num_workers,
                    resume ? &resumed[w] : nullptr, plane.channel(w), stop)
          .IgnoreError();
    });
  }

  Coordinator coordinator(
      CoordinatedJobOf(*kind, options, spec, data, servers_at, num_servers, num_workers, start),
      &plane);
  StatusOr<nlohmann::json> summary = coordinator.Run(stop);
  for (auto& t : threads) t.join();
  for (auto& s : servers) s.server->Stop();
  return summary;
}

}  // namespace vrec::train
