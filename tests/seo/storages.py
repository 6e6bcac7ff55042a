"""FileSystemStorage subclasses that record or break ``save`` (real files, real storage API)."""

from __future__ import annotations

from django.core.files.storage import FileSystemStorage


class RecordingStorage(FileSystemStorage):
    """Records each saved name in order, and which generation was current at that moment."""

    saved: list[str] = []
    current_while_saving: list[object] = []

    @classmethod
    def reset(cls) -> None:
        cls.saved.clear()
        cls.current_while_saving.clear()

    def _save(self, name, content):
        from seo.services import current_generation

        tenant_id = int(name.split("/", 1)[0].removeprefix("tenant-"))
        RecordingStorage.saved.append(name)
        RecordingStorage.current_while_saving.append(current_generation(tenant_id))
        return super()._save(name, content)


class FailingStorage(FileSystemStorage):
    """Saves its first file, then fails every save like a full disk."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saves = 0

    def _save(self, name, content):
        self.saves += 1
        if self.saves > 1:
            raise OSError(28, "disk full")
        return super()._save(name, content)
