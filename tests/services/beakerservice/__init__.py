"""A stand-in Beaker service on loopback that the real beaker-py 2.8.1 client talks to, unmodified.

No Beaker service is reachable from the tests, so this one speaks Beaker's protocol on 127.0.0.1: the REST routes
beaker-py sends over HTTP and the gRPC service `allenai.beaker.Beaker`, implemented by subclassing beaker-py's
generated `beaker.beaker_pb2_grpc.BeakerServicer` with its own `beaker_pb2` messages (no hand-written protobuf).

How beaker-py finds it. `Beaker.from_env()` reads the YAML file named by BEAKER_CONFIG: `agent_address` is the
REST base (`{agent_address}/api/v3/...`, here plain `http://127.0.0.1:PORT`; BEAKER_ADDR would override it) and
`rpc_address` is the gRPC target (`127.0.0.1:PORT`), which beaker-py always opens with
`grpc.secure_channel(..., grpc.ssl_channel_credentials())`: TLS with the default roots, no plaintext option.
So the gRPC port serves TLS with a self-signed certificate for 127.0.0.1 made once per process (tls.py), and
GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (gRPC's supported setting for its default roots) names a bundle of the system
roots plus that certificate. gRPC reads the variable once per process, at the first secure channel: start the
stand-in before anything else in the process opens one (start() checks and raises tls.UntrustedError rather
than letting beaker-py retry an unreachable server forever). Subprocesses inherit it through `env`.
Every call carries the user token: gRPC metadata `authorization: bearer TOKEN`, REST `Authorization: Bearer
TOKEN`; the dataset file store takes the dataset's storage token instead.

Public API (import from `tests.services.beakerservice`; the `beaker_service` fixture is in tests/conftest.py):

    beaker_service (fixture)    a started BeakerService for one test; BEAKER_CONFIG and the gRPC roots variable set
                                in os.environ (monkeypatch), BEAKER_TOKEN / BEAKER_ADDR removed; skipped (with
                                the reason) when beaker-py is not installed.
    BeakerService(folder=None, *, token=..., user="tester", org="ai2", default_workspace=None)
        start() / stop() / with-statement   both servers on free loopback ports; stop() releases held calls and
                                lets calls in flight finish (5 s grace) before closing both ports
        .address                http://127.0.0.1:PORT (REST, config agent_address)
        .rpc_address            127.0.0.1:PORT (gRPC over TLS, config rpc_address)
        .token                  the one token accepted; anything else is refused
        .config_path            the beaker-py config file (user_token, agent_address, rpc_address, default_org)
        .env                    variables a client process needs
        .subprocess_env(base=None)  os.environ (or base) + env, minus BEAKER_TOKEN and BEAKER_ADDR
        .client(**overrides)    a real beaker.Beaker for this server (check_for_upgrades=False)
        .add_workspace("ai2/olmix") / .add_cluster("ai2/jupiter") -> id;  .add_secret(workspace, name)
        .set_job_state(experiment, state, *, exit_code=None, reason=None, task=None, canceled_code=None)
                                experiment: id, 'author/name' or bare name; state: a BeakerWorkloadStatus name
                                ("queued", "running", "succeeded", "failed", "canceled", ...); reason becomes the
                                job's status message (and canceled_for); exit_code defaults 0/1 for succeeded/failed;
                                canceled_code: a BeakerCancelationCode name, e.g. "system_preemption"
        .write_result(experiment, {path: bytes}, *, task=None) -> dataset id
                                files the latest job (of each task, or of `task`) wrote under its result path, into
                                its result dataset (made on the first write, committed when the job finishes; the
                                job's assignment_details.result_dataset_id names it, so beaker-py's
                                job.get_results / workload.get_results, dataset.list_files and stream_file read it)
        .experiments() / .experiment(name_or_id)   copies of what was created: .id .name .workspace .author
                                .spec (the JSON body as posted, camelCase) .tasks[].jobs[] .state .canceled
        .datasets() / .dataset_files(name_or_id) -> {path: bytes}
        .calls                  Counter of call names (gRPC method names, REST names below); .reset_calls(),
                                .total_calls()
        .fail_next(call, status=503, *, message=..., after=False, times=1)   refuse the next call(s); after=True
                                lets it take effect first (the client never hears it succeeded)
        .delay_next(call, seconds, *, times=1, after=False)   after=True: the answer is late, the effect is not
        .hold_next(call, *, after=False) -> Gate   .wait_arrived(timeout), .arrived (Event), .release(),
                                .wait_finished(timeout), .finished (Event: the server is done with the call, even
                                when the client gave up waiting, as a client past its timeout does)

gRPC methods implemented: GetUser, ResolveUserName, GetOrganization, ResolveOrganizationName, ResolveWorkspaceName,
GetWorkspace, ResolveClusterName, GetCluster, GetSecret, ListSecrets, ResolveWorkloadName, GetWorkload,
ListWorkloads (filters: organization, workspace, author, type, statuses, job_finalized, name_or_description
substring, created before/after; newest first unless ascending is asked; pages of page_size with
next_page_token), CancelWorkloads,
GetExperimentYamlSpec, GetJob, ListJobs (task, finalized; sort by created; pages), ResolveDatasetName,
GetDataset, ListDatasetFiles, DeleteDatasets. Every other RPC answers UNIMPLEMENTED (beaker-py:
NotImplementedError), after the auth check.

REST routes implemented (call names in brackets):
    POST  /api/v3/workspaces/{id}/experiments?name=N  [CreateExperiment]  409 on a name in use, 404 unknown
          workspace, cluster, secret or dataset named by the spec, 400 a spec without v2 tasks or image
    POST  /api/v3/datasets?name=N                     [CreateDataset]     returns the storage (address, token)
    GET   /api/v3/datasets/{id}                       [GetDatasetStorage]
    PATCH /api/v3/datasets/{id}  {"commit": true}     [CommitDataset]
    GET   /api/v3/datasets/{id}/files/{path}          [DownloadDatasetFile]  Range supported
    PUT   /api/v3/workspaces/{id}/secrets/{name}/value [WriteSecret]     the value is dropped
    PUT   /fileheap/datasets/{storage}/files/{path}   [UploadDatasetFile] whole file, or Digest of an upload
    POST  /fileheap/uploads                           [StartUpload]       files over 32 MiB, in chunks
    PATCH /fileheap/uploads/{id}                      [WriteUpload]

Refusals as the real service sends them, so beaker-py raises its real exceptions: a wrong or missing token is
gRPC UNAUTHENTICATED (beaker-py lets the grpc.RpcError through) or REST 401 with `{"message", "status"}`
(beaker-py: BeakerError "[code=401] ..."); unknown workspace, cluster, secret, workload, job, dataset are
NOT_FOUND / 404 (BeakerWorkspaceNotFound, BeakerClusterNotFound, ...); a name in use is 409
(BeakerExperimentConflict, BeakerDatasetConflict).

`python -m tests.services.beakerservice [--workspace W] [--cluster C] [--secret S] -- COMMAND...` runs a command
against a
stand-in and prints (to stderr) the experiments it created and the calls it served.

Assumptions where beaker-py does not say what the service does: experiment and dataset names are unique per author
(the `author/name` that ResolveWorkloadName and ResolveDatasetName take); a name in use is a 409 (beaker-py also
maps a 400 whose message says "already in use" to a conflict); a spec naming an unknown cluster, secret or
dataset is refused with 404 at creation; error bodies are `{"message", "status"}` (beaker-py reads `message`).

Not modelled: groups (spec `groups` kept as posted; group RPCs are UNIMPLEMENTED), scheduling (jobs stay
where set_job_state puts them; one job per task is made at creation, queued), replicas (one task per spec task,
whatever `replicas` says; replica_group_details only echo the spec), automatic retries and preemption (a test
sets a cancelation code; a new state after a finished one starts a new job), logs, images (an
image name is echoed, not resolved), budgets (echoed), queues, sessions/environments, nodes, organization
membership and permissions (one user, one org, one token; no 403s), secret values (names only), spec validation
beyond the checks above (unknown fields are kept as posted), rate limits, HTTPS on the REST port (plain HTTP, so
urllib3's retries, mounted for https:// only, do not happen), and everything in
`beaker_pb2_grpc` not listed above.
"""

from tests.services.beakerservice.service import UNSET_VARIABLES, BeakerService, Fault, Gate
from tests.services.beakerservice.state import FINAL_STATES, JOB_STATES, CallError
from tests.services.beakerservice.tls import UntrustedError

__all__ = [
    "FINAL_STATES",
    "JOB_STATES",
    "UNSET_VARIABLES",
    "BeakerService",
    "CallError",
    "Fault",
    "Gate",
    "UntrustedError",
]
