"""Direct uploads and download links through the routes (chalice.test + moto in process).

moto answers the presigned URLs here too (it intercepts `requests`); the same
flows over real HTTP against the local stack are in tests/e2e/test_media_io.py.
"""

from __future__ import annotations

import pytest
import requests

from chalicelib.config import settings
from chalicelib.store import storage
from chalicelib.store.models import Job


def new_upload(api, token, size=1000, filename="clip one.mp4", content_type="video/mp4"):
    body = {"filename": filename, "size": size, "content_type": content_type}
    return api.call("POST", "/api/uploads", body, token=token)


def test_a_small_file_gets_one_presigned_put_under_the_users_uploads_prefix(api):
    token = api.user("uploader", "operator")
    r = new_upload(api, token)
    assert r.status_code == 201, r.data
    upload = r.data["upload"]
    assert upload["method"] == "PUT" and upload["status"] == "pending"
    assert upload["key"] == f"uploads/uploader/{upload['id']}/clip one.mp4"
    assert upload["headers"] == {"Content-Type": "video/mp4"}
    assert "X-Amz-Signature=" in upload["url"] and "X-Amz-Expires=3600" in upload["url"]
    # Signed for the declared type and exact length: S3 refuses other bytes.
    assert "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost" in upload["url"]
    assert upload["expires"].endswith("Z") and upload["source"] == f"upload:{upload['id']}"
    put = requests.put(upload["url"], data=b"x" * 1000, headers=upload["headers"], timeout=10)
    assert put.status_code == 200
    done = api.call("POST", f"/api/uploads/{upload['id']}/complete", {}, token=token)
    assert done.status_code == 200 and done.data["upload"]["status"] == "complete"
    again = api.call("POST", f"/api/uploads/{upload['id']}/complete", {}, token=token)
    assert again.status_code == 200 and again.data["upload"] == done.data["upload"]  # idempotent


def test_a_job_names_a_completed_upload_as_its_source(api):
    token = api.user("uploader", "operator")
    upload = new_upload(api, token, size=3).data["upload"]
    body = {"preset": "h264_baseline_360p_600", "source": f"upload:{upload['id']}", "dest": "d/"}
    early = api.call("POST", "/api/jobs", body, token=token)
    assert early.status_code == 400 and "/complete" in early.data["message"]
    requests.put(upload["url"], data=b"abc", headers=upload["headers"], timeout=10)
    api.call("POST", f"/api/uploads/{upload['id']}/complete", token=token)
    r = api.call("POST", "/api/jobs", body, token=token)
    assert r.status_code == 200, r.data
    job = Job.get(r.data["job"]["id"])
    assert job.source == f"s3://{settings().input_bucket}/{upload['key']}"
    assert job.origin.as_dict() == {"kind": "upload", "upload": upload["id"]}


def test_an_upload_is_only_visible_to_its_owner_and_admins(api):
    mine = api.user("owner-1", "operator")
    theirs = api.user("other-1", "operator")
    guest = api.user("guest-1", "guest")
    upload = new_upload(api, mine).data["upload"]
    assert api.call("GET", f"/api/uploads/{upload['id']}", token=mine).status_code == 200
    assert api.call("GET", f"/api/uploads/{upload['id']}", token=theirs).status_code == 404
    assert api.call("GET", f"/api/uploads/{upload['id']}", token=guest).status_code == 403
    body = {"preset": "h264_baseline_360p_600", "source": f"upload:{upload['id']}", "dest": "d/"}
    r = api.call("POST", "/api/jobs", body, token=theirs)
    assert r.status_code == 400 and "no upload" in r.data["message"]


def test_a_size_or_type_other_than_declared_is_refused_on_completion_and_removed(api):
    token = api.user("uploader", "operator")
    upload = new_upload(api, token, size=10).data["upload"]
    requests.put(upload["url"], data=b"x" * 11, headers=upload["headers"], timeout=10)
    r = api.call("POST", f"/api/uploads/{upload['id']}/complete", token=token)
    assert r.status_code == 400 and "11 bytes arrived but 10 were declared" in r.data["message"]
    assert (
        api.call("GET", f"/api/uploads/{upload['id']}", token=token).data["upload"]["status"]
        == "aborted"
    )
    with pytest.raises(storage.SourceMissing):
        storage.object_size(storage.S3Location(settings().input_bucket, upload["key"]))
    other = new_upload(api, token, size=3).data["upload"]
    requests.put(other["url"], data=b"abc", headers={"Content-Type": "text/html"}, timeout=10)
    r = api.call("POST", f"/api/uploads/{other['id']}/complete", token=token)
    assert r.status_code == 400 and "declared 'video/mp4'" in r.data["message"]


def test_completing_before_sending_the_bytes_says_what_to_do(api):
    token = api.user("uploader", "operator")
    upload = new_upload(api, token).data["upload"]
    r = api.call("POST", f"/api/uploads/{upload['id']}/complete", token=token)
    assert r.status_code == 400 and "PUT the file" in r.data["message"]


def test_a_large_file_gets_presigned_parts_and_is_assembled_on_completion(api, monkeypatch):
    token = api.user("uploader", "operator")
    mib = 1024 * 1024
    size = 2 * settings().upload_part_size + 123
    monkeypatch.setitem(settings().__dict__, "upload_single_max", mib)
    upload = new_upload(api, token, size=size).data["upload"]
    assert upload["method"] == "multipart" and upload["part_size"] == settings().upload_part_size
    assert [p["part_number"] for p in upload["parts"]] == [1, 2, 3]
    assert all("X-Amz-SignedHeaders=content-length%3Bhost" in p["url"] for p in upload["parts"])
    etags = []
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * upload["part_size"]
        chunk = b"p" * (min(size, start + upload["part_size"]) - start)
        put = requests.put(part["url"], data=chunk, timeout=30)
        assert put.status_code == 200
        etags.append({"part_number": part["part_number"], "etag": put.headers["ETag"]})
    path = f"/api/uploads/{upload['id']}/complete"
    missing = api.call("POST", path, {"parts": etags[:2]}, token=token)
    assert missing.status_code == 400 and "numbered 1 to 3" in missing.data["message"]
    wrong = [{**etags[0], "etag": '"0000"'}, *etags[1:]]
    assert api.call("POST", path, {"parts": wrong}, token=token).status_code == 400
    done = api.call("POST", path, {"parts": etags}, token=token)
    assert done.status_code == 200, done.data
    location = storage.S3Location(settings().input_bucket, upload["key"])
    assert storage.object_size(location) == size


def test_an_aborted_upload_cannot_be_completed_or_used(api, monkeypatch):
    token = api.user("uploader", "operator")
    monkeypatch.setitem(settings().__dict__, "upload_single_max", 1)
    upload = new_upload(api, token, size=100).data["upload"]
    r = api.call("DELETE", f"/api/uploads/{upload['id']}", token=token)
    assert r.status_code == 200 and r.data["upload"]["status"] == "aborted"
    r = api.call("POST", f"/api/uploads/{upload['id']}/complete", {"parts": []}, token=token)
    assert r.status_code == 409
    assert api.call("DELETE", f"/api/uploads/{upload['id']}", token=token).status_code == 409


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"filename": "../etc/passwd", "size": 1, "content_type": "video/mp4"}, "plain file name"),
        ({"filename": "a\nb.mp4", "size": 1, "content_type": "video/mp4"}, "plain file name"),
        ({"filename": "a.mp4", "size": 0, "content_type": "video/mp4"}, "'size'"),
        ({"filename": "a.mp4", "size": 10**15, "content_type": "video/mp4"}, "size must be"),
        ({"filename": "a.mp4", "size": 1, "content_type": "text/html"}, "content_type"),
        ({"filename": "a.mp4", "size": 1}, "'content_type' is required"),
    ],
)
def test_bad_upload_requests_are_clear_400s(api, body, words):
    token = api.user("uploader", "operator")
    r = api.call("POST", "/api/uploads", body, token=token)
    assert r.status_code == 400 and words in r.data["message"], r.data


def test_unknown_or_malformed_upload_ids_are_404(api):
    token = api.user("uploader", "operator")
    for ref in ("nope", "0" * 20, "%2e%2e"):
        assert api.call("GET", f"/api/uploads/{ref}", token=token).status_code == 404


def test_each_output_carries_a_download_link_that_fetches_it(api):
    token = api.user("maker", "operator")
    body = {"preset": "h264_baseline_360p_600", "source": "src/a.mp4", "dest": "out/a/"}
    job_id = api.call("POST", "/api/jobs", body, token=token).data["job"]["id"]
    location = storage.S3Location(settings().output_bucket, "out/a/h264_baseline_360p_600.mp4")
    storage.s3().put_object(Bucket=location.bucket, Key=location.key, Body=b"encoded")
    Job(job_id).update(actions=[Job.outputs.set([{"key": location.key, "uri": location.uri}])])
    guest = api.user("watcher", "guest")
    view = api.call("GET", f"/api/jobs/{job_id}", token=guest).data
    (output,) = view["outputs"]
    assert output["url_expires"].endswith("Z") and "X-Amz-Expires=3600" in output["url"]
    listed = api.call("GET", f"/api/jobs/{job_id}/outputs", token=guest).data
    assert listed["count"] == 1 and listed["items"][0]["key"] == location.key
    assert requests.get(listed["items"][0]["url"], timeout=10).content == b"encoded"


def test_provisioning_sets_a_rule_that_aborts_abandoned_multipart_uploads_keeping_others(aws):
    import boto3

    from ops import provision

    s3 = boto3.client("s3")
    bucket = settings().input_bucket
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    (rule,) = [r for r in rules if r["ID"] == provision.ABORT_ABANDONED_UPLOADS["ID"]]
    assert rule["Filter"] == {"Prefix": "uploads/"} and rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    other = {"ID": "someone-elses", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
             "Expiration": {"Days": 3}}  # fmt: skip
    provision.ensure_lifecycle_rule(s3, bucket, other)
    provision.provision(stage="local", log=lambda _m: None)  # a second run changes nothing
    ids = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert ids >= {"someone-elses", provision.ABORT_ABANDONED_UPLOADS["ID"]}


def upload_event(client, upload):
    return client.events.generate_s3_event(
        bucket=upload["bucket"], key=upload["key"].replace(" ", "+"), event_name="ObjectCreated:Put"
    )


JOB = {"preset": "h264_baseline_360p_600", "dest": "d/"}


def test_a_job_made_at_once_after_the_put_completes_the_upload_itself(api):
    token = api.user("uploader", "operator")
    upload = new_upload(api, token, size=3).data["upload"]
    put = requests.put(upload["url"], data=b"abc", headers=upload["headers"], timeout=10)
    r = api.call("POST", "/api/jobs", {**JOB, "source": f"upload:{upload['id']}"}, token=token)
    assert r.status_code == 200, r.data
    view = api.call("GET", f"/api/uploads/{upload['id']}", token=token).data["upload"]
    assert view["status"] == "complete" and view["etag"] == put.headers["ETag"].strip('"')
    # complete stays, and answers a completed upload as it is.
    done = api.call("POST", f"/api/uploads/{upload['id']}/complete", token=token)
    assert done.status_code == 200 and done.data["upload"] == view


def test_the_uploads_s3_event_completes_a_single_upload_once(api):
    from chalice.test import Client

    from app import app

    token = api.user("uploader", "operator")
    upload = new_upload(api, token, size=3).data["upload"]
    requests.put(upload["url"], data=b"abc", headers=upload["headers"], timeout=10)
    with Client(app, stage_name="local") as client:
        event = upload_event(client, upload)
        client.lambda_.invoke("uploads", event)
        client.lambda_.invoke("uploads", event)  # S3 delivers at least once
    view = api.call("GET", f"/api/uploads/{upload['id']}", token=token).data["upload"]
    assert view["status"] == "complete" and view["etag"]
    r = api.call("POST", "/api/jobs", {**JOB, "source": f"upload:{upload['id']}"}, token=token)
    assert r.status_code == 200, r.data


def test_fewer_bytes_than_declared_are_a_clear_409_by_event_or_by_job(api):
    from chalice.test import Client

    from app import app

    token = api.user("uploader", "operator")
    by_job = new_upload(api, token, size=10).data["upload"]
    by_event = new_upload(api, token, size=10).data["upload"]
    for upload in (by_job, by_event):
        requests.put(upload["url"], data=b"short", headers=upload["headers"], timeout=10)
    with Client(app, stage_name="local") as client:
        client.lambda_.invoke("uploads", upload_event(client, by_event))
    for upload in (by_job, by_event, by_job):
        r = api.call("POST", "/api/jobs", {**JOB, "source": f"upload:{upload['id']}"}, token=token)
        assert r.status_code == 409, r.data
        assert "5 bytes arrived but 10 were declared" in r.data["message"]
        assert "start a new one" in r.data["message"]
        with pytest.raises(storage.SourceMissing):
            storage.object_size(storage.S3Location(settings().input_bucket, upload["key"]))
    view = api.call("GET", f"/api/uploads/{by_event['id']}", token=token).data["upload"]
    assert view["status"] == "aborted" and view["refused"].startswith("5 bytes arrived")


def test_a_multipart_upload_is_left_to_its_complete_call(api, monkeypatch):
    from chalice.test import Client

    from app import app

    token = api.user("uploader", "operator")
    monkeypatch.setitem(settings().__dict__, "upload_single_max", 1)
    upload = new_upload(api, token, size=3).data["upload"]
    with Client(app, stage_name="local") as client:
        client.lambda_.invoke("uploads", upload_event(client, upload))
    assert (
        api.call("GET", f"/api/uploads/{upload['id']}", token=token).data["upload"]["status"]
        == "pending"
    )
    r = api.call("POST", "/api/jobs", {**JOB, "source": f"upload:{upload['id']}"}, token=token)
    assert r.status_code == 400 and "with its parts" in r.data["message"]


def test_events_of_other_keys_change_nothing(api):
    from chalice.test import Client

    from app import app
    from chalicelib.jobs import uploads

    with Client(app, stage_name="local") as client:
        for key in ("uploads/x", "uploads/someone/" + "0" * 20 + "/a.mp4", "uploads/a/b/c/d"):
            event = client.events.generate_s3_event(bucket=settings().input_bucket, key=key)
            assert uploads.handle_event(
                event.to_dict() if hasattr(event, "to_dict") else event
            ) == [None]
            client.lambda_.invoke("uploads", event)
