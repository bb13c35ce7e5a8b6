"""The gRPC side: a subclass of beaker-py's generated `BeakerServicer`, and an interceptor for auth, counting, faults.

Only the methods below are implemented; every other RPC of the generated service answers UNIMPLEMENTED (the
generated base class does that), which beaker-py turns into NotImplementedError. The interceptor wraps every
handler, implemented or not, so each call is counted, its bearer token checked (UNAUTHENTICATED, as Beaker does)
and any injected fault applied, before the servicer runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc  # type: ignore[import-untyped]
from beaker import beaker_pb2 as pb2
from beaker import beaker_pb2_grpc

from tests.services.beakerservice import pb
from tests.services.beakerservice import state as st

if TYPE_CHECKING:
    from tests.services.beakerservice.service import BeakerService

T = TypeVar("T")

_CODE = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
# every RPC of the generated service, implemented here or not: the names faults and call counts use
METHODS = frozenset(name for name in vars(beaker_pb2_grpc.BeakerServicer) if not name.startswith("_"))


def grpc_code(http_status: int) -> Any:
    return _CODE.get(http_status, grpc.StatusCode.UNKNOWN)


def _page(items: list[T], token: str, size: int) -> tuple[list[T], str]:
    start = int(token) if token.isdigit() else 0
    size = size if size > 0 else 50
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


class Interceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, service: BeakerService) -> None:
        self._service = service

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        name = method.rpartition("/")[2]
        service = self._service

        def wrap(behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            def run(request: Any, context: Any) -> Any:
                token = ""
                for key, value in context.invocation_metadata():
                    if key == "authorization" and value.lower().startswith("bearer "):
                        token = value[len("bearer ") :]
                try:
                    return service._handle(name, token, lambda: behavior(request, context))
                except st.CallError as err:
                    context.abort(grpc_code(err.status), err.message)

            return run

        kinds = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
        replaced = {kind: wrap(getattr(handler, kind)) for kind in kinds if getattr(handler, kind) is not None}
        return handler._replace(**replaced)


class Servicer(beaker_pb2_grpc.BeakerServicer):
    """The RPCs beaker-py's clients for users, orgs, workspaces, clusters, secrets, workloads, jobs, datasets call."""

    def __init__(self, service: BeakerService) -> None:
        self._state = service.state

    # -- identity ------------------------------------------------------------------------------------------

    def GetUser(self, request: pb2.GetUserRequest, context: Any) -> pb2.GetUserResponse:
        s = self._state
        with s.lock:
            if request.user_id and request.user_id not in (s.user_id, s.user):
                raise st.CallError(404, f"user {request.user_id!r} not found")
            return pb2.GetUserResponse(user=pb.user(s))

    def ResolveUserName(self, request: pb2.ResolveUserNameRequest, context: Any) -> pb2.ResolveUserNameResponse:
        s = self._state
        with s.lock:
            if request.user_name != s.user:
                raise st.CallError(404, f"user {request.user_name!r} not found")
            return pb2.ResolveUserNameResponse(user_id=s.user_id)

    def ResolveOrganizationName(
        self, request: pb2.ResolveOrganizationNameRequest, context: Any
    ) -> pb2.ResolveOrganizationNameResponse:
        s = self._state
        with s.lock:
            if request.organization_name != s.org:
                raise st.CallError(404, f"organization {request.organization_name!r} not found")
            return pb2.ResolveOrganizationNameResponse(organization_id=s.org_id)

    def GetOrganization(self, request: pb2.GetOrganizationRequest, context: Any) -> pb2.GetOrganizationResponse:
        s = self._state
        with s.lock:
            if request.organization_id and request.organization_id not in (s.org_id, s.org):
                raise st.CallError(404, f"organization {request.organization_id!r} not found")
            return pb2.GetOrganizationResponse(organization=pb.organization(s))

    # -- workspaces, clusters, secrets ---------------------------------------------------------------------

    def ResolveWorkspaceName(
        self, request: pb2.ResolveWorkspaceNameRequest, context: Any
    ) -> pb2.ResolveWorkspaceNameResponse:
        s = self._state
        with s.lock:
            ws = s.workspace_by_name(request.owner_name, request.workspace_name)
            return pb2.ResolveWorkspaceNameResponse(workspace_id=ws.id)

    def GetWorkspace(self, request: pb2.GetWorkspaceRequest, context: Any) -> pb2.GetWorkspaceResponse:
        s = self._state
        with s.lock:
            return pb2.GetWorkspaceResponse(workspace=pb.workspace(s, s.workspace(request.workspace_id)))

    def ResolveClusterName(
        self, request: pb2.ResolveClusterNameRequest, context: Any
    ) -> pb2.ResolveClusterNameResponse:
        s = self._state
        with s.lock:
            cluster = s.cluster(f"{request.owner_name}/{request.cluster_name}")
            return pb2.ResolveClusterNameResponse(cluster_id=cluster.id)

    def GetCluster(self, request: pb2.GetClusterRequest, context: Any) -> pb2.GetClusterResponse:
        s = self._state
        with s.lock:
            return pb2.GetClusterResponse(cluster=pb.cluster(s, s.cluster(request.cluster_id)))

    def GetSecret(self, request: pb2.GetSecretRequest, context: Any) -> pb2.GetSecretResponse:
        s = self._state
        with s.lock:
            return pb2.GetSecretResponse(secret=pb.secret(s, s.secret(request.workspace_id, request.secret_name)))

    def ListSecrets(self, request: pb2.ListSecretsRequest, context: Any) -> pb2.ListSecretsResponse:
        s = self._state
        with s.lock:
            ws = s.workspace(request.options.workspace_id)
            found = sorted((sec for sec in s.secrets.values() if sec.workspace_id == ws.id), key=lambda x: x.name)
            page, token = _page(found, request.next_page_token, request.options.page_size)
            return pb2.ListSecretsResponse(secrets=[pb.secret(s, sec) for sec in page], next_page_token=token)

    # -- workloads and jobs --------------------------------------------------------------------------------

    def ResolveWorkloadName(
        self, request: pb2.ResolveWorkloadNameRequest, context: Any
    ) -> pb2.ResolveWorkloadNameResponse:
        s = self._state
        with s.lock:
            exp = s.experiment(f"{request.author_name}/{request.workload_name}")
            return pb2.ResolveWorkloadNameResponse(workload_id=exp.id)

    def GetWorkload(self, request: pb2.GetWorkloadRequest, context: Any) -> pb2.GetWorkloadResponse:
        s = self._state
        with s.lock:
            exp = s.experiments.get(request.workload_id)
            if exp is None:
                raise st.CallError(404, f"workload {request.workload_id!r} not found")
            return pb2.GetWorkloadResponse(workload=pb.workload(s, exp))

    def ListWorkloads(self, request: pb2.ListWorkloadsRequest, context: Any) -> pb2.ListWorkloadsResponse:
        s = self._state
        opts = request.options
        with s.lock:
            if opts.organization_id and opts.organization_id not in (s.org_id, s.org):
                raise st.CallError(404, f"organization {opts.organization_id!r} not found")
            if opts.workspace_id:
                s.workspace(opts.workspace_id)
            needle = opts.name_or_description_substring
            statuses = set(opts.statuses)
            found = []
            for exp in s.experiments.values():
                if opts.workspace_id and exp.workspace_id != opts.workspace_id:
                    continue
                if opts.author_id and opts.author_id not in (s.user_id, s.user):
                    continue
                if opts.workload_type == pb2.WORKLOAD_TYPE_ENVIRONMENT:
                    continue
                if needle and needle not in exp.name and needle not in str(exp.spec.get("description") or ""):
                    continue
                if statuses and pb.status(exp.state) not in statuses:
                    continue
                if opts.HasField("job_finalized") and opts.job_finalized != (exp.state in st.FINAL_STATES):
                    continue
                if opts.HasField("created_before") and exp.created >= opts.created_before.ToNanoseconds() / 1e9:
                    continue
                if opts.HasField("created_after") and exp.created <= opts.created_after.ToNanoseconds() / 1e9:
                    continue
                found.append(exp)
            ascending = opts.sort_clause.sort_order == pb2.SORT_ORDER_ASCENDING
            # ids are random, so creation order among equal timestamps is the insertion order of s.experiments
            order = {exp_id: i for i, exp_id in enumerate(s.experiments)}
            found.sort(key=lambda e: (e.created, order[e.id]), reverse=not ascending)
            page, token = _page(found, request.next_page_token, opts.page_size)
            return pb2.ListWorkloadsResponse(workloads=[pb.workload(s, e) for e in page], next_page_token=token)

    def CancelWorkloads(self, request: pb2.CancelWorkloadsRequest, context: Any) -> pb2.CancelWorkloadsResponse:
        s = self._state
        with s.lock:
            for workload_id in request.workload_ids:
                s.experiment(workload_id)
            for workload_id in request.workload_ids:
                s.cancel(workload_id)
            return pb2.CancelWorkloadsResponse(workload_ids=list(request.workload_ids))

    def GetExperimentYamlSpec(
        self, request: pb2.GetExperimentYamlSpecRequest, context: Any
    ) -> pb2.GetExperimentYamlSpecResponse:
        import yaml

        s = self._state
        with s.lock:
            exp = s.experiments.get(request.experiment_id)
            if exp is None:
                raise st.CallError(404, f"experiment {request.experiment_id!r} not found")
            return pb2.GetExperimentYamlSpecResponse(experiment_spec=yaml.safe_dump(exp.spec, sort_keys=False))

    def GetJob(self, request: pb2.GetJobRequest, context: Any) -> pb2.GetJobResponse:
        s = self._state
        with s.lock:
            found = s.jobs.get(request.job_id)
            if found is None:
                raise st.CallError(404, f"job {request.job_id!r} not found")
            return pb2.GetJobResponse(job=pb.job(s, *found))

    def ListJobs(self, request: pb2.ListJobsRequest, context: Any) -> pb2.ListJobsResponse:
        s = self._state
        opts = request.options
        with s.lock:
            if opts.organization_id and opts.organization_id not in (s.org_id, s.org):
                raise st.CallError(404, f"organization {opts.organization_id!r} not found")
            if opts.environment_id:
                return pb2.ListJobsResponse()
            found = []
            for exp, task, job in s.jobs.values():
                if opts.task_id and task.id != opts.task_id:
                    continue
                if opts.HasField("finalized") and opts.finalized != (job.finalized is not None):
                    continue
                found.append((exp, task, job))
            ascending = opts.sort_clause.sort_order == pb2.SORT_ORDER_ASCENDING
            # ids are random, so creation order among equal timestamps is the insertion order of s.jobs
            order = {job.id: i for i, (_, _, job) in enumerate(s.jobs.values())}
            found.sort(key=lambda f: (f[2].created, order[f[2].id]), reverse=not ascending)
            page, token = _page(found, request.next_page_token, opts.page_size)
            return pb2.ListJobsResponse(jobs=[pb.job(s, *f) for f in page], next_page_token=token)

    # -- datasets ------------------------------------------------------------------------------------------

    def ResolveDatasetName(
        self, request: pb2.ResolveDatasetNameRequest, context: Any
    ) -> pb2.ResolveDatasetNameResponse:
        s = self._state
        with s.lock:
            return pb2.ResolveDatasetNameResponse(
                dataset_id=s.dataset(f"{request.author_name}/{request.dataset_name}").id
            )

    def GetDataset(self, request: pb2.GetDatasetRequest, context: Any) -> pb2.GetDatasetResponse:
        s = self._state
        with s.lock:
            ds = s.datasets.get(request.dataset_id)
            if ds is None:
                raise st.CallError(404, f"dataset {request.dataset_id!r} not found")
            return pb2.GetDatasetResponse(dataset=pb.dataset(s, ds))

    def ListDatasetFiles(self, request: pb2.ListDatasetFilesRequest, context: Any) -> pb2.ListDatasetFilesResponse:
        s = self._state
        with s.lock:
            ds = s.datasets.get(request.options.dataset_id)
            if ds is None:
                raise st.CallError(404, f"dataset {request.options.dataset_id!r} not found")
            prefix = request.options.prefix
            paths = sorted(p for p in ds.files if p.startswith(prefix))
            page, token = _page(paths, request.next_page_token, 1000)
            return pb2.ListDatasetFilesResponse(
                dataset_files=[pb.dataset_file(ds, p) for p in page],
                next_page_token=token,
                total_size=sum(len(ds.files[p]) for p in paths),
                file_count=len(paths),
            )

    def DeleteDatasets(self, request: pb2.DeleteDatasetsRequest, context: Any) -> pb2.DeleteDatasetsResponse:
        s = self._state
        with s.lock:
            for dataset_id in request.dataset_ids:
                s.dataset(dataset_id)
            for dataset_id in request.dataset_ids:
                del s.datasets[s.dataset(dataset_id).id]
            return pb2.DeleteDatasetsResponse()
