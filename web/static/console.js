// keylens console conveniences. Everything works without this file: it only
// adds copy buttons next to issued credentials.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
	document.querySelectorAll("button[data-copy]").forEach(function (b) {
		var target = document.getElementById(b.getAttribute("data-copy"));
		if (!target || !navigator.clipboard) {
			return;
		}
		b.hidden = false;
		b.addEventListener("click", function () {
			navigator.clipboard.writeText(target.textContent.trim()).then(function () {
				b.textContent = "Copied";
			});
		});
	});
});
