"""The demo shop's two arms under load from Locust, as a controller's traffic split would
send it: half the users read from the baseline, half from the candidate, each user at a
bounded pace (10 requests a second). The arms' URLs come from the environment."""

import os

from locust import HttpUser, constant_throughput, task


class Baseline(HttpUser):
    host = os.environ["BASELINE_URL"]
    wait_time = constant_throughput(10)

    @task
    def item(self):
        self.client.get("/items/1", name="/items/{id}")


class Candidate(HttpUser):
    host = os.environ["CANDIDATE_URL"]
    wait_time = constant_throughput(10)

    @task
    def item(self):
        self.client.get("/items/1", name="/items/{id}")
